"""A Design: role supernodes, each a mixture of LLMs (or skipped), a DAG between them, a decision model.

Models are referred to by their pool name. Roles are indexed by position in `roles`; edges are
(src, dst) pairs of role indices. This is the object the policy samples and the executor runs.

Structural rules are checked when a Design is built (lengths agree, edges in range, no self loops
or duplicates, acyclic, k >= 1), so an invalid Design cannot exist; `Design.validate(roleset,
models)` adds the checks that need context (known role names, known model names). Errors are
`UserError`s whose message names the bad field.

Skipped roles: a skipped role makes no calls. Information still flows *through* it: its active
predecessors feed its active successors (`Design.active_dag()` bridges skipped nodes). The
decision model reads the sinks of that active DAG; when every role is skipped it answers alone.

Decision inputs (`decision_inputs`): `sinks` (above), or `all`: the decision reads every active
role, and when their extracted answers are unanimous that answer is taken directly with no
decision call (as HieraMAS does). With `all`, one active role with one proposer is exactly
"single model X" (`Design.lone()`: the executor makes the single model's plain call); several one-proposer roles without edges are a plurality vote escalated to
the decision model only on disagreement (a cascade).

The plurality synthesizer (`PLURALITY`, a reserved synthesizer name, never a pool model): a
supernode with k > 1 proposers whose synthesizer is `plurality` makes no synthesis call; its output
is the proposal whose extracted answer is the most common one (ties: the earliest proposal); the
proposers are asked from the last one up, only until the rest can no longer change the winner
(`mas/supernode.py`), so the first ones — which decide ties — are paid only on disagreement. One
such role alone under `decision_inputs="all"` is the plurality vote of its proposers — the `vote`
baseline when they are the whole pool (`Design.lone()`: the proposers make the single model's plain
calls), and a vote of any subset otherwise — so a vote of more models than there are roles is a
Design too.

JSON: `schema_version` 2 adds `decision_inputs`; version-1 files load with `sinks`.

Graph algorithms (acyclicity, topological order, generations, longest path) come from networkx;
random and fixed topologies live in `mas/topologies.py`, drawing in `mas/draw.py`.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from hieramas_gnn.errors import UserError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no decision_inputs field (always "sinks")
DECISION_INPUTS = ("sinks", "all")
PLURALITY = "plurality"  # the synthesizer that is no model: the most common proposal answer wins


@dataclass(frozen=True)
class Mixture:
    """Inside one supernode: `proposers` answer in parallel, `synthesizer` writes the output.

    With a single proposer the synthesizer step is skipped (the proposal is the output).
    Proposers may repeat a model (repeated samples of it, told apart by sample index).
    `synthesizer` may be `PLURALITY`: no synthesis call, the most common proposal answer wins.
    """

    proposers: tuple[str, ...]
    synthesizer: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "proposers", tuple(self.proposers))
        if self.k < 1:
            raise UserError("mixture.proposers: a mixture needs k >= 1 proposers, got 0")
        for name in (*self.proposers, self.synthesizer):
            if not isinstance(name, str) or not name:
                raise UserError(f"mixture: model names must be non-empty strings, got {name!r}")
        if PLURALITY in self.proposers:
            raise UserError(f"mixture.proposers: {PLURALITY!r} is the plurality synthesizer, not a model")

    @property
    def k(self) -> int:
        return len(self.proposers)

    @property
    def plurality(self) -> bool:
        """k > 1 proposers combined by plurality (no synthesis call)."""
        return self.k > 1 and self.synthesizer == PLURALITY

    def calls(self) -> int:
        """LLM calls this supernode makes at most: k proposers, plus the synthesizer when k > 1
        (none for the plurality synthesizer, which may also settle before asking them all)."""
        return self.k + (1 if self.k > 1 and not self.plurality else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"proposers": list(self.proposers), "synthesizer": self.synthesizer}

    @classmethod
    def from_dict(cls, data: Any, where: str = "mixture") -> Mixture:
        if not isinstance(data, dict) or "proposers" not in data or "synthesizer" not in data:
            raise UserError(f"{where}: expected {{'proposers': [...], 'synthesizer': ...}}, got {data!r}")
        if not isinstance(data["proposers"], list):
            raise UserError(f"{where}.proposers: expected a list of model names")
        return cls(tuple(data["proposers"]), data["synthesizer"])


@dataclass(frozen=True)
class Design:
    """roles: role names in order; mixtures[i] is role i's Mixture or None (skipped);
    edges: DAG between role indices; decision: model that reads the sinks (or, with
    decision_inputs="all", every active role) and answers."""

    roles: tuple[str, ...]
    mixtures: tuple[Mixture | None, ...]
    edges: tuple[tuple[int, int], ...]
    decision: str
    decision_inputs: str = "sinks"

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(self.roles))
        object.__setattr__(self, "mixtures", tuple(self.mixtures))
        object.__setattr__(self, "edges", tuple(_edge(e, i) for i, e in enumerate(self.edges)))
        self._check_structure()

    # ----------------------------------------------------------------- validation
    def _check_structure(self) -> None:
        n = len(self.roles)
        if len(self.mixtures) != n:
            raise UserError(f"design.mixtures: {len(self.mixtures)} mixtures for {n} roles")
        if len(set(self.roles)) != n:
            raise UserError(f"design.roles: duplicate role names in {list(self.roles)}")
        for i, m in enumerate(self.mixtures):
            if m is not None and not isinstance(m, Mixture):
                raise UserError(f"design.mixtures[{i}]: expected a Mixture or None, got {type(m).__name__}")
        if not isinstance(self.decision, str) or not self.decision:
            raise UserError("design.decision: a decision model name is required")
        if self.decision_inputs not in DECISION_INPUTS:
            raise UserError(f"design.decision_inputs: must be one of {DECISION_INPUTS}, got {self.decision_inputs!r}")
        seen: set[tuple[int, int]] = set()
        for s, d in self.edges:
            if not (0 <= s < n and 0 <= d < n):
                raise UserError(f"design.edges: edge ({s}, {d}) out of range for {n} roles")
            if s == d:
                raise UserError(f"design.edges: self loop on role {s} ({self.roles[s]})")
            if (s, d) in seen:
                raise UserError(f"design.edges: duplicate edge ({s}, {d})")
            seen.add((s, d))
        if not _acyclic(n, self.edges):  # networkx only to name the cycle (building its graph per design is slow)
            cycle = nx.find_cycle(self.to_networkx())
            names = " -> ".join(self.roles[s] for s, _ in cycle) + f" -> {self.roles[cycle[0][0]]}"
            raise UserError(f"design.edges: the graph has a cycle: {names}")

    def validate(self, roleset: Any = None, models: Any = None) -> Design:
        """Check role names against a RoleSet (or names) and model names against a Pool (or names).

        Returns self so it chains; raises UserError naming the unknown role or model.
        """
        if roleset is not None:
            known = set(_role_names(roleset))
            for i, r in enumerate(self.roles):
                if r not in known:
                    raise UserError(f"design.roles[{i}]: unknown role {r!r} (known: {sorted(known)})")
        if models is not None:
            known = set(_model_names(models))
            for i, m in enumerate(self.mixtures):
                for name in () if m is None else (*m.proposers, *([] if m.synthesizer == PLURALITY else [m.synthesizer])):
                    if name not in known:
                        raise UserError(
                            f"design.mixtures[{i}] ({self.roles[i]}): unknown model {name!r} "
                            f"(pool has: {sorted(known)})")
            if self.decision not in known:
                raise UserError(f"design.decision: unknown model {self.decision!r} (pool has: {sorted(known)})")
        return self

    # ----------------------------------------------------------------- graph views
    @property
    def n(self) -> int:
        return len(self.roles)

    def active(self) -> list[int]:
        """Indices of roles that are not skipped."""
        return [i for i, m in enumerate(self.mixtures) if m is not None]

    def to_networkx(self) -> nx.DiGraph:
        """All roles as nodes (attributes: role, mixture, skipped), edges as given."""
        g = nx.DiGraph()
        for i, r in enumerate(self.roles):
            g.add_node(i, role=r, mixture=self.mixtures[i], skipped=self.mixtures[i] is None)
        g.add_edges_from(self.edges)
        return g

    def active_dag(self) -> nx.DiGraph:
        """The DAG over active roles only; a skipped role's predecessors feed its successors."""
        g = self.to_networkx()
        h = nx.DiGraph()
        h.add_nodes_from((i, g.nodes[i]) for i in self.active())
        for i in h.nodes:
            # walk forward from i through skipped roles; the first active role on each path is fed by i
            stack, seen = list(g.successors(i)), set()
            while stack:
                v = stack.pop()
                if v in seen:
                    continue
                seen.add(v)
                if g.nodes[v]["skipped"]:
                    stack.extend(g.successors(v))
                else:
                    h.add_edge(i, v)
        return h

    def predecessors(self) -> dict[int, list[int]]:
        """For each active role, its active predecessors (after bridging skipped roles), sorted."""
        return {i: list(p) for i, p in _views(self)[0]}

    def sinks(self) -> list[int]:
        """Active roles with no active successor: what the decision model reads."""
        return list(_views(self)[1])

    def lone(self) -> int | None:
        """The role of a design whose answer is its proposers' own, with no one reading them — one
        active role, its answer taken directly (`decision_inputs="all"`), and one proposer
        ("single model X") or the plurality synthesizer (a vote of its proposers) — else None. The
        executor runs that role's proposers with the plain single-model prompt and takes the
        (voted) answer as final, parsed or not: exactly the `single:<model>` baseline (same call,
        cost and grade), or the `vote` baseline's answer over those models (asked until settled:
        a subset of its calls)."""
        active = self.active()
        if self.decision_inputs != "all" or len(active) != 1:
            return None
        mix = self.mixtures[active[0]]
        return active[0] if mix.k == 1 or mix.plurality else None

    def decision_reads(self) -> list[int]:
        """The roles whose outputs the decision reads: the sinks, or every active role."""
        return self.active() if self.decision_inputs == "all" else self.sinks()

    def topological_order(self) -> list[int]:
        """A deterministic topological order of all roles (ties broken by index)."""
        return list(_views(self)[2])

    def levels(self) -> list[list[int]]:
        """Topological generations of the active DAG (level 0: active roles with no predecessor)."""
        return [sorted(gen) for gen in nx.topological_generations(self.active_dag())]

    def critical_path(self, call_ms: float = 1.0) -> tuple[list[int], float]:
        """Longest chain of dependent calls when each call takes `call_ms`, decision included.

        A supernode takes 1 call time with k = 1 and 2 (propose, then synthesize) with k > 1.
        Returns (active roles on the path, total time).
        """
        h = self.active_dag()
        w = {i: (2 if self.mixtures[i].k > 1 else 1) * call_ms for i in h.nodes}
        g = nx.DiGraph()
        g.add_node("src")
        for i in h.nodes:
            g.add_edge("src", i, t=w[i])
        for s, d in h.edges:
            g.add_edge(s, d, t=w[d])
        path = [v for v in nx.dag_longest_path(g, weight="t") if v != "src"]
        return path, sum(w[i] for i in path) + call_ms

    def summary(self) -> str:
        """A short name of the design's shape, for reports: `D alone` (every role skipped: the
        decision model answers the question), `single M`, `vote of k [models]`
        (independent one-proposer roles, decision on disagreement), `moa k [...]`, or the
        general `n roles, e edges, c calls`."""
        active = self.active()
        mixes = [self.mixtures[i] for i in active]
        if not active:
            return f"{self.decision} alone (every role skipped)"
        if len(active) == 1 and mixes[0].k == 1:
            return f"single {mixes[0].proposers[0]}"
        if len(active) == 1 and mixes[0].plurality and self.decision_inputs == "all":
            return f"plurality vote of {mixes[0].k} [{', '.join(mixes[0].proposers)}]"
        if len(active) == 1:
            return f"moa {mixes[0].k} [{', '.join(mixes[0].proposers)}] -> {mixes[0].synthesizer}"
        edges = self.active_dag().number_of_edges()
        if not edges and all(m.k == 1 for m in mixes) and self.decision_inputs == "all":
            return f"vote of {len(active)} [{', '.join(m.proposers[0] for m in mixes)}] -> {self.decision} on disagreement"
        return f"{len(active)} roles, {edges} edges, {self.total_calls()} calls"

    def mixture_models(self) -> set[str]:
        """The models the mixtures name (proposers and synthesizers; not the decision model)."""
        return {name for m in self.mixtures if m is not None
                for name in (*m.proposers, *([] if m.synthesizer == PLURALITY else [m.synthesizer]))}

    def total_calls(self) -> int:
        """LLM calls one execution makes at most (every supernode plus the decision; with
        decision_inputs="all" a unanimous execution skips the decision call). A request's
        `max_calls` bounds `mas.limits.design_calls`, which also leaves out the decision call of a
        lone design that never makes it; its `max_rounds` bounds `mas.limits.design_rounds`."""
        return sum(m.calls() for m in self.mixtures if m is not None) + 1

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "roles": list(self.roles),
            "mixtures": [None if m is None else m.to_dict() for m in self.mixtures],
            "edges": [list(e) for e in self.edges],
            "decision": self.decision,
            "decision_inputs": self.decision_inputs,
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> Design:
        if not isinstance(data, dict):
            raise UserError(f"design: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise UserError(f"design.schema_version: expected one of {READABLE_VERSIONS}, got {version!r}")
        for key in ("roles", "mixtures", "edges", "decision"):
            if key not in data:
                raise UserError(f"design.{key}: missing")
        if not isinstance(data["roles"], list) or not all(isinstance(r, str) for r in data["roles"]):
            raise UserError("design.roles: expected a list of role names")
        if not isinstance(data["mixtures"], list):
            raise UserError("design.mixtures: expected a list (null for a skipped role)")
        if not isinstance(data["edges"], list) or any(
                not isinstance(e, list | tuple) or len(e) != 2 for e in data["edges"]):
            raise UserError("design.edges: expected a list of [src, dst] pairs")
        mixtures = [None if m is None else Mixture.from_dict(m, f"design.mixtures[{i}]")
                    for i, m in enumerate(data["mixtures"])]
        return cls(tuple(data["roles"]), tuple(mixtures), tuple(tuple(e) for e in data["edges"]),
                   data["decision"], data.get("decision_inputs", "sinks") if version >= 2 else "sinks")

    @classmethod
    def from_json(cls, text: str) -> Design:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"design: not valid JSON ({exc})") from None
        return cls.from_dict(data)


def _acyclic(n: int, edges: Sequence[tuple[int, int]]) -> bool:
    """Whether the graph of `n` nodes and `edges` (distinct pairs in range) has no cycle (Kahn)."""
    if not edges:
        return True
    indeg = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for s, d in edges:
        out[s].append(d)
        indeg[d] += 1
    ready = [i for i in range(n) if not indeg[i]]
    seen = 0
    while ready:
        v = ready.pop()
        seen += 1
        for w in out[v]:
            indeg[w] -= 1
            if not indeg[w]:
                ready.append(w)
    return seen == n


def _edge(edge: Any, i: int) -> tuple[int, int]:
    """(src, dst) as ints; floats, strings and bools are refused, never coerced ([0, 1.5] is an error)."""
    try:
        src, dst = edge
    except (TypeError, ValueError):
        raise UserError(f"design.edges[{i}]: expected a [src, dst] pair, got {edge!r}") from None
    out = []
    for v in (src, dst):
        if isinstance(v, bool) or type(v).__name__ in ("bool_", "bool"):
            raise UserError(f"design.edges[{i}]: role indices must be integers, got {v!r} in {list(edge)!r}")
        try:
            out.append(operator.index(v))
        except TypeError:
            raise UserError(f"design.edges[{i}]: role indices must be integers, got {v!r} in {list(edge)!r}") from None
    return out[0], out[1]


def _role_names(roleset: Any) -> Iterable[str]:
    if hasattr(roleset, "names"):
        names = roleset.names
        return names() if callable(names) else names
    return roleset


def _model_names(models: Any) -> Iterable[str]:
    """Names from a Pool (`.models` as a list of specs or a dict), a dict, or an iterable of names."""
    models = getattr(models, "models", models)
    if isinstance(models, dict):
        return list(models)
    return [m if isinstance(m, str) else m.name for m in models]


@functools.lru_cache(maxsize=4096)
def _views(design: Design) -> tuple[tuple[tuple[int, tuple[int, ...]], ...], tuple[int, ...], tuple[int, ...]]:
    """(predecessors, sinks, topological order) of a design, computed once per distinct design
    (the executor asks for them on every episode; a design is immutable)."""
    h = design.active_dag()
    preds = tuple((i, tuple(sorted(h.predecessors(i)))) for i in h.nodes)
    sinks = tuple(sorted(i for i in h.nodes if h.out_degree(i) == 0))
    return preds, sinks, tuple(nx.lexicographical_topological_sort(design.to_networkx()))
