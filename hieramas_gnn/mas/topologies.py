"""Topologies over N roles: random DAGs and the fixed shapes baselines use (chain, star, complete, layered).

Every function returns edges as a tuple of (src, dst) role indices, so they drop straight into
`Design(edges=...)`. Randomness comes in as a `numpy.random.Generator` (no global state).

Random DAG recipe (the one stage 1 draws its topology pool from): a random order of the roles, a
random spanning tree that respects the order (every role but the first gets one parent drawn
among the roles before it, so the graph is weakly connected), then extra forward edges drawn
uniformly until the edge count reaches `density * N(N-1)/2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.design import Design, Mixture

Edges = tuple[tuple[int, int], ...]
FIXED_TOPOLOGIES = ("chain", "star", "complete", "layered")


def random_dag(n: int, density: float, rng: np.random.Generator) -> Edges:
    """A weakly connected random DAG on n nodes with about density * n(n-1)/2 edges (>= n-1)."""
    if n < 1:
        raise UserError(f"random_dag: n must be >= 1, got {n}")
    if not 0.0 <= density <= 1.0:
        raise UserError(f"random_dag: density must be in [0, 1], got {density}")
    order = [int(v) for v in rng.permutation(n)]
    tree = [(order[int(rng.integers(0, pos))], order[pos]) for pos in range(1, n)]
    chosen = set(tree)
    extra = [(order[a], order[b]) for a in range(n) for b in range(a + 1, n)
             if (order[a], order[b]) not in chosen]
    target = max(n - 1, int(round(density * n * (n - 1) / 2)))
    n_extra = min(len(extra), target - len(tree))
    if n_extra > 0:
        picks = rng.choice(len(extra), size=n_extra, replace=False)
        chosen.update(extra[int(i)] for i in picks)
    return tuple(sorted(chosen))


def chain(n: int) -> Edges:
    """0 -> 1 -> ... -> n-1."""
    return tuple((i, i + 1) for i in range(n - 1))


def star(n: int) -> Edges:
    """Role 0 feeds every other role (the others are the sinks the decision reads)."""
    return tuple((0, i) for i in range(1, n))


def complete(n: int) -> Edges:
    """Every forward edge i -> j, i < j."""
    return tuple((i, j) for i in range(n) for j in range(i + 1, n))


def layer_sizes(n: int, n_layers: int = 3) -> list[int]:
    """Split n roles into at most n_layers consecutive layers, sizes as even as possible."""
    n_layers = max(1, min(n_layers, n))
    base, rest = divmod(n, n_layers)
    return [base + (1 if i < rest else 0) for i in range(n_layers)]


def layered(n: int, sizes: Sequence[int] | None = None) -> Edges:
    """Consecutive layers of roles, every role of one layer feeding every role of the next."""
    sizes = list(sizes) if sizes is not None else layer_sizes(n)
    if sum(sizes) != n or any(s < 1 for s in sizes):
        raise UserError(f"layered: layer sizes {sizes} must be positive and sum to {n}")
    starts = np.cumsum([0, *sizes]).tolist()
    layers = [list(range(starts[i], starts[i + 1])) for i in range(len(sizes))]
    return tuple((s, d) for a, b in zip(layers, layers[1:]) for s in a for d in b)


def topology(name: str, n: int, rng: np.random.Generator | None = None, density: float = 0.5) -> Edges:
    """Edges of a named topology: chain, star, complete, layered, or random (needs rng)."""
    if name == "random":
        if rng is None:
            raise UserError("topology 'random' needs a numpy Generator (seed it through config)")
        return random_dag(n, density, rng)
    table = {"chain": chain, "star": star, "complete": complete, "layered": layered}
    if name not in table:
        raise UserError(f"unknown topology {name!r} (known: {', '.join([*table, 'random'])})")
    return table[name](n)


def random_mixture(models: Sequence[str], rng: np.random.Generator, k_max: int = 3) -> Mixture:
    """k ~ U{1..k_max} distinct proposers from `models`, a synthesizer drawn from `models`."""
    k = int(rng.integers(1, min(k_max, len(models)) + 1))
    proposers = tuple(models[int(i)] for i in rng.choice(len(models), size=k, replace=False))
    return Mixture(proposers, models[int(rng.integers(0, len(models)))])


def random_design(roles: Sequence[str], models: Sequence[str], rng: np.random.Generator, *,
                  density: float = 0.5, k_max: int = 3, p_skip: float = 0.0) -> Design:
    """A random DAG over `roles` with random mixtures; each role skipped with prob p_skip."""
    edges = random_dag(len(roles), density, rng)
    mixtures = tuple(None if rng.random() < p_skip else random_mixture(models, rng, k_max)
                     for _ in roles)
    decision = models[int(rng.integers(0, len(models)))]
    return Design(tuple(roles), mixtures, edges, decision)


def candidate_dags(n: int, k: int, rng: np.random.Generator, density_min: float = 0.0,
                   density_max: float = 1.0) -> list[Edges]:
    """`k` distinct random DAGs (sorted edge tuples; fewer only when `n` admits fewer distinct
    connected DAGs), each with an extra-edge density drawn from U(density_min, density_max)."""
    out: list[Edges] = []
    seen: set[Edges] = set()
    for _ in range(50 * k):
        dag = tuple(sorted(random_dag(n, float(rng.uniform(density_min, density_max)), rng)))
        if dag not in seen:
            seen.add(dag)
            out.append(dag)
            if len(out) == k:
                break
    return out
