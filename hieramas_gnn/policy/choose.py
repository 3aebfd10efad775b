"""The one way a design is chosen for a query: training validation, `eval`, `run`, `serve`, the
demo and the experiments all call `DesignChooser.designs` (what is served is what was measured).

A `ChoiceSettings` (stored in every policy bundle) names the topology route that was trained:

- `classifier` (HieraMAS stage 2): per query, K candidate DAGs drawn from a generator seeded by
  (settings.seed, the query text); the stage-1 mixtures conditioned on each DAG (greedy); the
  graph-score head scores the K designs and the best one runs.
- `edges` (the design card's route): the edge head's most likely DAG (greedy order, edges with
  p > 1/2), then the greedy mixtures conditioned on it.
- `random`: the `classifier` candidates, one picked by the same per-query generator (the control
  with no topology learning; also what a bundle whose topology head was never trained uses, so
  an untrained head never decides anything).

`topologies` is the DAG family stage 1 trained the mixtures on: `random` (the candidates above)
or `parallel` (no edges: the one candidate is the empty DAG, so independent roles whose answers
the decision reads — a vote, a cascade, a single model — are chosen exactly as they were trained
and validated, never re-wired with edges the selector never saw).

A cost-conditioned bundle (`policy/cost.py`) takes a cost weight λ per query (`designs(queries,
cost_lambdas=...)`; None: the bundle's default λ): λ is a query feature, and the decision model
is the one searched at the nearest grid λ. A bundle without a cost grid refuses a λ.

Per-request limits on calls and rounds (`mas.limits.RequestLimits`, `designs(queries,
limits=...)`): the route's candidate designs are taken in its order of preference — `classifier`:
by graph score, best first; `random`: the drawn candidate, then the others in drawn order;
`edges` and `parallel` topologies: their one design — and the first one within the limits runs.
When none fits, the route's own choice is cut down to fit (`mas.limits.fit_design`: cut edges
and shrink or skip roles to meet the rounds, then drop the least likely proposers and the latest
roles to meet the calls; at worst the decision model alone, 1 call in 1 round). No limits: the
design is exactly the route's choice.

Every query is decided on its own, so the choice does not depend on which other queries are in
the batch or in which order they come: `eval` over 512 queries, `run` on one and `serve` on one
HTTP request choose the identical design. `designs` embeds the texts of all its queries in one
embedder call (MiniLM encodes texts of one token count together, unpadded, short texts alone:
the same bits as one at a time, `features.grouped_tokens`), then runs one policy forward per
query (its K candidates as one batch; tests/test_batched_designs.py: a batch's designs are each
query's alone). Several queries' graphs are not put through one forward: a CPU matrix product
gives a row other last bits when the number of rows changes (torch 2.13 here: fewer than 4 rows
at one thread, and for one output column most row counts that are not multiples of 4), ~1e-7 on
the logits, which can flip a near-tie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas import topologies
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.limits import RequestLimits, fit_design
from hieramas_gnn.policy.cost import CostGrid, per_query
from hieramas_gnn.policy.graph import dag_edge_index
from hieramas_gnn.policy.settings import ROUTES, TOPOLOGIES, ChoiceSettings  # noqa: F401  (re-exported)
from hieramas_gnn.policy.sample import sample

Edges = tuple[tuple[int, int], ...]


def query_text(q: Any) -> str:
    """The text of a query given as a `Question`, a `(text, meta)` pair or a plain string."""
    if isinstance(q, str):
        return q
    if isinstance(q, tuple):
        return str(q[0])
    return str(q.text)


def query_rng(seed: int, q: Any) -> np.random.Generator:
    """A generator that depends only on (seed, the query's text)."""
    digest = hashlib.sha256(query_text(q).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


class DesignChooser:
    """`designs(queries) -> [Design]`: the choice rule of `settings` over `policy` + `builder`
    (`cost`: the `CostGrid` of a cost-conditioned policy)."""

    def __init__(self, policy: Any, builder: Any, settings: ChoiceSettings, cost: CostGrid | None = None) -> None:
        self.policy, self.builder, self.settings, self.cost = policy, builder, settings, cost
        self.n_roles = len(builder.role_names)
        if (cost is not None) != bool(getattr(builder, "cost_conditioned", False)):
            raise ValueError("a cost grid goes with a cost-conditioned policy and only with one")

    def decision(self, cost_lambda: float | None = None) -> str:
        """The decision model of a query at λ (module docstring)."""
        if self.cost is None:
            if cost_lambda is not None:
                raise UserError("this policy bundle is not cost-conditioned: it takes no cost weight (cost_lambda / "
                                "max_cost_usd); train one with reward.cost_lambda_range")
            return self.settings.decision
        return self.cost.decision(self.cost.default if cost_lambda is None else cost_lambda)

    def _lams(self, cost_lambda: float | None, n: int) -> list[float | None] | None:
        self.decision(cost_lambda)  # refuses a λ for a policy without a grid
        return None if self.cost is None else [cost_lambda] * n

    def candidates(self, q: Any) -> tuple[list[Edges], int]:
        """The K candidate DAGs of one query and the index the `random` route runs (both drawn
        from the query's own generator: the same in every process for the same text)."""
        s = self.settings
        rng = query_rng(s.seed, q)
        if s.topologies == "parallel":
            return [()], 0
        dags = topologies.candidate_dags(self.n_roles, s.n_candidates, rng, s.density_min, s.density_max)
        return dags, int(rng.integers(len(dags)))

    def _row(self, q: Any, cost_lambda: float | None, row: torch.Tensor | None) -> torch.Tensor:
        """The query's node row (`row` when the caller computed it, from `builder.query_rows`).
        Shapes: -> [1, F_q]."""
        self._lams(cost_lambda, 1)  # refuses a λ for a policy without a grid
        return self.builder.query_rows([q], [cost_lambda]) if row is None else row

    def _on(self, q: Any, dags: Sequence[Edges], cost_lambda: float | None, row: torch.Tensor | None = None):
        """(the batch of `q` under each DAG, the greedy mixtures' `SampleOut`): one batch of the K
        graphs, the query's features computed once (or given: `row` [1, F_q]), one encoder pass."""
        row = self._row(q, cost_lambda, row)
        batch = self.builder.from_rows(row.repeat(len(dags), 1), [tuple(d) for d in dags])
        return batch, sample(self.policy, batch, decision=self.decision(cost_lambda), mode="mixture",
                             dags=list(dags), greedy=True, scores=False)

    @torch.no_grad()
    def mixtures_on(self, q: Any, dags: Sequence[Edges], cost_lambda: float | None = None,
                    row: torch.Tensor | None = None) -> list[Design]:
        """The greedy stage-1 mixtures of one query conditioned on each DAG."""
        return self._on(q, dags, cost_lambda, row)[1].designs

    @torch.no_grad()
    def scored(self, q: Any, dags: Sequence[Edges] | None = None, cost_lambda: float | None = None,
               row: torch.Tensor | None = None) -> tuple[list[Design], torch.Tensor]:
        """The `classifier` route's work for one query: the greedy mixtures on each candidate DAG
        (`dags`; default: the query's own `candidates`) and the graph-score logits of those
        designs, from one batch and one encoder pass shared by the two (the same numbers as
        `mixtures_on` then `score`, tested). Shapes: -> K designs, logits [K]."""
        dags = self.candidates(q)[0] if dags is None else dags
        batch, out = self._on(q, dags, cost_lambda, row)
        dag = dag_edge_index(batch, [d.edges for d in out.designs])  # the encoding's DAG edges
        return out.designs, self.policy.score_head(out.encoded, dag)

    @torch.no_grad()
    def score(self, q: Any, designs: Sequence[Design], cost_lambda: float | None = None) -> torch.Tensor:
        """Graph-score logits of one query's designs. Shapes: -> [K]."""
        self._lams(cost_lambda, 1)  # refuses a λ for a policy without a grid
        batch = self.builder.repeated(q, [d.edges for d in designs], cost_lambda)
        return self.policy.graph_logits(batch, dag_edge_index(batch, [d.edges for d in designs]))

    @torch.no_grad()
    def ranked(self, q: Any, cost_lambda: float | None = None, row: torch.Tensor | None = None) -> list[Design]:
        """The route's candidate designs of one query in its order of preference (module
        docstring): the first is the route's choice (`row`: the query's node row when known)."""
        route = self.settings.route
        if route == "edges":
            batch = self.builder.from_rows(self._row(q, cost_lambda, row), [()])
            return [sample(self.policy, batch, decision=self.decision(cost_lambda), mode="dag",
                           greedy=True, scores=False).designs[0]]
        dags, pick = self.candidates(q)
        if route == "random":
            return self.mixtures_on(q, [dags[pick], *dags[:pick], *dags[pick + 1:]], cost_lambda, row)
        cands, logits = self.scored(q, dags, cost_lambda, row)
        scores = logits.tolist()
        best = int(torch.argmax(torch.tensor(scores)))  # the route's choice, exactly as without limits
        rest = sorted((i for i in range(len(cands)) if i != best), key=lambda i: -scores[i])
        return [cands[i] for i in (best, *rest)]

    @torch.no_grad()
    def design(self, q: Any, cost_lambda: float | None = None, limits: RequestLimits | None = None,
               row: torch.Tensor | None = None) -> Design:
        """The design for one query (at cost weight λ: a cost-conditioned policy only; within
        `limits`: module docstring; `row`: the query's node row [1, F_q] when known)."""
        route = self.settings.route
        if limits is None or not limits.active:
            if route == "edges":
                return self.ranked(q, cost_lambda, row)[0]
            dags, pick = self.candidates(q)
            if route == "random":
                return self.mixtures_on(q, [dags[pick]], cost_lambda, row)[0]
            cands, logits = self.scored(q, dags, cost_lambda, row)
            return cands[int(torch.argmax(logits))]
        ranked = self.ranked(q, cost_lambda, row)
        return next((d for d in ranked if limits.fits(d)), None) or fit_design(ranked[0], limits)

    def designs(self, queries: Sequence[Any], cost_lambdas: Any = None,
                limits: RequestLimits | None = None) -> list[Design]:
        """One design per query (each decided on its own, the same as `design(q)`; see the module
        docstring); `cost_lambdas`: one λ for all, or one per query (None: the default); `limits`:
        the calls and rounds every design keeps within (None: none)."""
        lams = per_query(cost_lambdas, len(queries))
        for lam in dict.fromkeys(lams):
            self.decision(lam)  # refuses a λ for a policy without a grid, before any work
        was_training = self.policy.training
        self.policy.eval()
        try:
            with torch.no_grad():
                rows = self.builder.query_rows(list(queries), lams)  # [Q, F_q]: one embedder call
                return [self.design(q, lam, limits, rows[i:i + 1]) for i, (q, lam) in enumerate(zip(queries, lams))]
        finally:
            self.policy.train(was_training)

    def with_route(self, route: str) -> DesignChooser:
        """The same policy and candidates under another route (e.g. the `random` control)."""
        from dataclasses import replace

        return DesignChooser(self.policy, self.builder, replace(self.settings, route=route), self.cost)
