"""The baselines users compare a learned design against, all on the same client and cost accounting.

Method names (stable; they are the `method` of the JSON rows of `hieramas baselines`):

- `single:<m>`  model m answers directly (position `single`).
- `cot:<m>`     model m is asked to think step by step first.
- `sc:<m>`      self-consistency: `sc_samples` chain-of-thought samples of m (sample index 0..n-1,
                temperature `sc_temperature`), plurality vote.
- `moa`, `moa2` Mixture-of-Agents with 1 and 2 layers: every pool model proposes; with 2 layers
                every model then re-answers having read all proposals; the anchor aggregates.
- `debate`      `debate_agents` agents (the best-ranked models, cycling) × `debate_rounds` rounds;
                from round 2 each agent reads its own and the others' previous answers; the
                final answer is the plurality of the last round.
- `vote`        plurality vote of all pool models' direct answers (the `single` calls).
- `chain`, `star`, `complete`, `layered`, `random`  fixed topologies over all roles of the
                family, run by the MAS executor; role i gets `fixed_k` proposers taken round-robin
                from the pool starting at model i, the anchor synthesizes and decides; `random`
                draws one DAG per query from a generator seeded by `seed`.
- `oracle`      right when at least one pool model's direct answer is right (an upper bound;
                its cost is that of asking every model).
- `router`, `cascade`, `best_single`  fitted on training questions (`eval/routers.py`); they
                exist once `routers.fit_routed_baselines` has registered them (`Baselines.register`).
- `best_per_task`, `knn_router`, `contrastive_router`  fitted peers of per-query routing
                (`eval/peer_routers.py`); `best_design_per_task` the best simple design of each
                task chosen on train + val with the task label (`eval/design_per_task.py`).

The anchor (synthesizer / aggregator / decision model) and the debate agents are chosen on data,
never by pool order: `anchor` when configured, else the first model of `ranking` (the pool models
sorted by single accuracy on training + validation questions: `rank_models`, `anchor_questions`
— the hash train + val share of the evaluated file, minus the evaluated questions;
`hieramas baselines` does this unless `--anchor` names a model). With neither configured, the first
anchored job ranks the pool itself (`Baselines.ensure_anchor`, at most `anchor_limit` questions
of the task's train + val data, the evaluated ones excluded when `run_baselines` knows them).

Plurality vote and ties (`plurality`): unparseable answers (None) cast no vote; the answer with
the most votes wins; a tie goes to the tied answer that was given *first* in the order of the
voters: `vote_order` for `vote` (default: pool order — the order the user lists models in, no
labels needed), sample order for `sc`, agent order for `debate`. `hieramas outcomes inspect`
breaks ties toward the answer of the model most accurate in the outcome table; passing the
models sorted by that accuracy as `vote_order` (`--vote-order`) reproduces its rule exactly,
which is how the MMLU-Redux replay check compares the two (`tests/test_baselines_replay.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.evaluate import summarize
from hieramas_gnn.llm.types import LLMRecord
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import run_design, run_many
from hieramas_gnn.mas.roles import RoleSet
from hieramas_gnn.mas.single import ask, ask_single, episode_job
from hieramas_gnn.mas.supernode import Episode, plurality, quote
from hieramas_gnn.mas.topologies import FIXED_TOPOLOGIES, topology
from hieramas_gnn.mas.trace import Trace
from hieramas_gnn.tasks.base import Question, Task, partition

PER_MODEL = ("single", "cot", "sc")
GROUPS = (*PER_MODEL, "moa", "moa2", "debate", "vote", *FIXED_TOPOLOGIES, "random", "oracle")
FITTED = ("router", "cascade", "best_single", "best_per_task", "best_design_per_task", "knn_router",
          "contrastive_router")  # need training questions: `eval/routers.py`
ANCHORED = ("moa", "moa2", "debate", *FIXED_TOPOLOGIES, "random")  # use the anchor or the ranking
Job = Callable[[Any], Awaitable[Trace]]


@dataclass(frozen=True)
class BaselineConfig:
    """Knobs of the baselines (each one is read by the method it names)."""

    sc_samples: int = 5            # samples per query for sc:<m>
    sc_temperature: float = 0.7    # sampling temperature for sc:<m>
    temperature: float = 0.0       # temperature of every other call
    fixed_k: int = 3               # proposers per role in the fixed topologies
    anchor: str | None = None      # synthesizer / decision / aggregator model (None: ranking[0])
    ranking: tuple[str, ...] | None = None  # pool models, best single accuracy on train+val first
    anchor_limit: int = 200        # train+val questions used to rank the pool when neither is set
    debate_agents: int = 3
    debate_rounds: int = 2
    random_density: float = 0.5    # edge density of the `random` topology
    seed: int = 0                  # seeds the `random` topology's DAGs
    vote_order: tuple[str, ...] | None = None  # tie-break priority of `vote` (None: pool order)


def expand_methods(methods: Sequence[str] | None, models: Sequence[str]) -> list[str]:
    """Method specs -> method names. A bare `single`/`cot`/`sc` means every pool model;
    `single:<m>` one model (checked against the pool); None means every group."""
    out: list[str] = []
    for spec in (GROUPS if not methods else methods):
        group, _, model = spec.partition(":")
        if group not in GROUPS + FITTED:
            raise UserError(f"--methods: unknown method {spec!r} (known: {', '.join(GROUPS + FITTED)})")
        if group in PER_MODEL:
            if model and model not in models:
                raise UserError(f"--methods: {spec!r} names a model not in the pool ({', '.join(models)})")
            out += [f"{group}:{m}" for m in ([model] if model else models)]
        elif model:
            raise UserError(f"--methods: {group!r} takes no model (got {spec!r})")
        else:
            out.append(group)
    return list(dict.fromkeys(out))


class Baselines:
    """Builds, per (method, question), the job that runs it: `async (client) -> Trace`."""

    def __init__(self, task: Task, roleset: RoleSet, models: Sequence[str], cfg: BaselineConfig):
        if not models:
            raise UserError("baselines: the pool has no models")
        self.task, self.roleset, self.models, self.cfg = task, roleset, list(models), cfg
        if cfg.ranking is not None and sorted(cfg.ranking) != sorted(self.models):
            raise UserError(f"baselines: ranking must list every pool model once, got {list(cfg.ranking)}")
        self.ranking = list(cfg.ranking) if cfg.ranking else None
        self.anchor = cfg.anchor or (self.ranking[0] if self.ranking else None)
        if self.anchor is not None and self.anchor not in self.models:
            raise UserError(f"baselines: anchor {self.anchor!r} is not in the pool")
        self._rng = np.random.default_rng(cfg.seed)
        self._anchor_lock: asyncio.Lock | None = None
        self.anchor_accuracy: dict[str, float] = {}  # train+val single accuracy when ranked here
        self.anchor_overlap = False  # ranked on questions that are also evaluated (none left over)
        self.anchor_traces: list[Trace] = []  # the ranking calls (paid, in no method's rows)
        order = list(cfg.vote_order or self.models)
        if sorted(order) != sorted(self.models):
            raise UserError(f"baselines: vote_order must list every pool model once, got {order}")
        self.vote_order = order
        self.fitted: dict[str, Callable[[Question], Job]] = {}

    def register(self, method: str, make_job: Callable[[Question], Job]) -> None:
        """Add a method whose jobs come from `make_job(question)` (the fitted ones, `routers.py`)."""
        self.fitted[method] = make_job

    # ------------------------------------------------------------------ jobs
    def job(self, method: str, question: Question) -> Job:
        if method in self.fitted:
            return self.fitted[method](question)
        if method in FITTED:
            raise UserError(f"baselines: {method!r} is fitted on training questions; "
                            "fit it first (eval/routers.py: fit_routed_baselines)")
        group, _, model = method.partition(":")
        if group in FIXED_TOPOLOGIES or group == "random":
            async def run_design_job(client: Any) -> Trace:
                await self.ensure_anchor(client)
                return await self._design_job(method, self.fixed_design(group), question, client)

            return run_design_job
        body = {"single": self._single, "cot": self._cot, "sc": self._sc, "moa": self._moa,
                "moa2": self._moa, "debate": self._debate, "vote": self._vote,
                "oracle": self._oracle}[group]
        temperature = self.cfg.sc_temperature if group == "sc" else self.cfg.temperature
        prepare = self.ensure_anchor if group in ("moa", "moa2", "debate") else None
        return episode_job(self.task, self.roleset, question, method,
                           lambda ep: body(ep, model or method), temperature, prepare=prepare)

    async def ensure_anchor(self, client: Any, evaluated: Sequence[Question] = ()) -> None:
        """Rank the pool on train + val questions (not `evaluated`) unless an anchor is set."""
        if self.anchor is not None:
            return
        if self._anchor_lock is None:
            self._anchor_lock = asyncio.Lock()
        async with self._anchor_lock:
            if self.anchor is None:
                questions, self.anchor_overlap = anchor_questions(self.task, evaluated, self.cfg.anchor_limit)
                ranked = await rank_models(self.task, self.roleset, self.models, questions, client,
                                           traces_out=self.anchor_traces)
                self.ranking = [m for m, _ in ranked]
                self.anchor = self.ranking[0]
                self.anchor_accuracy = dict(ranked)

    def fixed_design(self, name: str) -> Design:
        """The fixed-topology design (a fresh random DAG per call for `random`)."""
        if self.anchor is None:
            raise UserError("baselines: the fixed topologies need an anchor: configure one (--anchor) "
                            "or rank the pool first (ensure_anchor)")
        roles, m, k = self.roleset.names, self.models, min(self.cfg.fixed_k, len(self.models))
        mixtures = tuple(Mixture(tuple(m[(i + j) % len(m)] for j in range(k)), self.anchor)
                         for i in range(len(roles)))
        edges = topology(name, len(roles), rng=self._rng, density=self.cfg.random_density)
        return Design(roles, mixtures, edges, self.anchor)

    async def _design_job(self, method: str, design: Design, q: Question, client: Any) -> Trace:
        trace = await run_design(design, q, self.task, client, self.roleset,
                                 temperature=self.cfg.temperature)
        trace.method = method
        return trace

    # ------------------------------------------------------------------ bodies
    # Each returns (text, answer, correct, critical-path latency in ms); LLMCallError propagates.
    async def _ask(self, ep: Episode, model: str, template: str, slot: int, *, sample: int = 0,
                   role: str = "single", position: str = "single") -> LLMRecord:
        return await ask(ep, model, template, slot, sample=sample, role=role, position=position)

    async def _single(self, ep: Episode, model: str) -> tuple:
        return await ask_single(ep, model)

    async def _cot(self, ep: Episode, model: str) -> tuple:
        rec = await self._ask(ep, model, "cot_user", 0)
        answer, correct = await ep.grade(rec.text)
        return rec.text, answer, correct, rec.latency_ms

    async def _sc(self, ep: Episode, model: str) -> tuple:
        recs = await _all([self._ask(ep, model, "cot_user", i, sample=i)
                           for i in range(self.cfg.sc_samples)])
        return self._voted(ep, recs)

    async def _vote(self, ep: Episode, _: str) -> tuple:
        recs = await _all([self._ask(ep, m, "single_user", i) for i, m in enumerate(self.vote_order)])
        return self._voted(ep, recs)

    async def _oracle(self, ep: Episode, _: str) -> tuple:
        recs = await _all([self._ask(ep, m, "single_user", i) for i, m in enumerate(self.models)])
        answers = [ep.extract(r.text) for r in recs]
        right = [a for a in answers if ep.task.is_correct(a, ep.question)]
        answer = right[0] if right else plurality(answers)
        return None, answer, bool(right), max(r.latency_ms for r in recs)

    def _voted(self, ep: Episode, recs: list[LLMRecord]) -> tuple:
        answer = plurality([ep.extract(r.text) for r in recs])
        return None, answer, ep.task.is_correct(answer, ep.question), max(r.latency_ms for r in recs)

    async def _moa(self, ep: Episode, method: str) -> tuple:
        layers = 2 if method == "moa2" else 1
        recs = await _all([self._ask(ep, m, "single_user", i, role="moa", position="proposer")
                           for i, m in enumerate(self.models)])
        latency = max(r.latency_ms for r in recs)
        for layer in range(1, layers + 1):
            texts = [r.text for r in recs]
            final = layer == layers
            models = [self.anchor] if final else self.models
            recs = await _all([self._aggregate(ep, m, texts, layer, i, final)
                               for i, m in enumerate(models)])
            latency += max(r.latency_ms for r in recs)
        answer, correct = await ep.grade(recs[0].text)
        return recs[0].text, answer, correct, latency

    async def _aggregate(self, ep: Episode, model: str, texts: list[str], layer: int, slot: int,
                         final: bool) -> LLMRecord:
        user = self.roleset.render(
            "aggregator_user", question=ep.question.text, instruction=ep.instruction(),
            proposals=quote([(f"Response {j + 1}", t) for j, t in enumerate(texts)]))
        req = ep.request(model, self.roleset.templates["single_system"], user, role="moa",
                         position="aggregator" if final else "synthesizer",
                         context_answers=[ep.extract(t) for t in texts])
        return await ep.call(req, (layer, 1, slot))

    async def _debate(self, ep: Episode, _: str) -> tuple:
        order = self.ranking or self.models  # the best models debate when the pool is ranked
        agents = [order[i % len(order)] for i in range(self.cfg.debate_agents)]
        samples = [agents[:i].count(m) for i, m in enumerate(agents)]  # repeated models differ
        recs = await _all([self._ask(ep, m, "single_user", i, sample=samples[i], role="debate",
                                     position="debate") for i, m in enumerate(agents)])
        latency = max(r.latency_ms for r in recs)
        for rnd in range(1, self.cfg.debate_rounds):
            texts = [r.text for r in recs]
            recs = await _all([self._rebut(ep, m, texts, i, rnd, samples[i])
                               for i, m in enumerate(agents)])
            latency += max(r.latency_ms for r in recs)
        return self._voted(ep, recs)[:3] + (latency,)

    async def _rebut(self, ep: Episode, model: str, texts: list[str], agent: int, rnd: int,
                     sample: int) -> LLMRecord:
        order = [agent] + [j for j in range(len(texts)) if j != agent]  # own answer first
        heads = ["Your previous answer" if j == agent else f"Agent {j + 1}" for j in order]
        user = self.roleset.render(
            "debate_user", question=ep.question.text, instruction=ep.instruction(),
            context=quote([(h, texts[j]) for h, j in zip(heads, order)]))
        req = ep.request(model, self.roleset.templates["single_system"], user, role="debate",
                         position="debate", sample_index=sample,
                         context_answers=[ep.extract(texts[j]) for j in order])
        return await ep.call(req, (rnd, 0, agent))


async def _all(aws: list[Awaitable[LLMRecord]]) -> list[LLMRecord]:
    """Await every call; re-raise the first LLMCallError only after all have finished (so every
    completed call is recorded). Other exceptions are bugs and propagate as they are."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)


class SharedCalls:
    """Client wrapper that makes each distinct request once per run and shares the record.

    Several baselines ask the very same thing (`single:<m>`, `vote` and `oracle` all need m's
    direct answer). The first asker pays; later askers get the same record flagged
    `cache_hit=True`, so each method's trace still carries the full cost of its calls while
    "money spent" (cost over records that are not hits) counts each call once. Failures are not
    shared with later askers (a failed request is tried again).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._done: dict[str, asyncio.Future] = {}

    async def complete(self, request: Any) -> LLMRecord:
        import dataclasses
        import json

        key = json.dumps([request.model, request.messages, request.temperature, request.max_tokens,
                          request.sample_index, request.prompt_version, request.metadata,
                          getattr(request, "params", {})], sort_keys=True, default=str)
        fut = self._done.get(key)
        if fut is not None:
            record = await asyncio.shield(fut)
            return dataclasses.replace(record, cache_hit=True)
        fut = self._done[key] = asyncio.get_running_loop().create_future()
        try:
            record = await self.client.complete(request)
        except BaseException as exc:
            del self._done[key]
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        fut.set_result(record)
        return record


async def run_baselines(baselines: Baselines, methods: Sequence[str], questions: Sequence[Question],
                        client: Any, max_in_flight: int = 32,
                        on_done: Callable[[Trace], None] | None = None) -> dict[str, list[Trace]]:
    """Every method on every question (one run_many over all of them); traces per method."""
    shared = SharedCalls(client)
    if any(m.partition(":")[0] in ANCHORED for m in methods):
        await baselines.ensure_anchor(shared, questions)
    jobs = [baselines.job(m, q) for m in methods for q in questions]
    traces = await run_many(jobs, shared, max_in_flight=max_in_flight, on_done=on_done)
    n = len(questions)
    return {m: traces[i * n:(i + 1) * n] for i, m in enumerate(methods)}


def anchor_questions(task: Task, evaluated: Sequence[Question], limit: int | None = 500,
                     split: str = "test") -> tuple[list[Question], bool]:
    """(questions to rank the pool on, whether they overlap `evaluated`).

    The hash `partition` train + val share of the task's `split` (the file being evaluated, so
    replay tables cover it: a benchmark's separate train split has no replayed outcomes), minus
    the evaluated questions. When that leaves nothing (the whole file is evaluated), the
    partition train + val itself, flagged as overlapping. At most `limit`, None for all.
    """
    every = task.load(split=split)
    pool = [*partition(every, "train"), *partition(every, "val")]
    skip = {q.id for q in evaluated}
    out = [q for q in pool if q.id not in skip]
    overlap = not out
    out = out or pool
    return (out[:limit] if limit is not None else out), overlap


async def rank_models(task: Task, roleset: RoleSet, models: Sequence[str], questions: Sequence[Question],
                      client: Any, max_in_flight: int = 32,
                      traces_out: list[Trace] | None = None) -> list[tuple[str, float]]:
    """(model, single accuracy on `questions`) for every pool model, best first; ties keep pool
    order. The first one is the fair anchor (synthesizer / aggregator / decision model).
    `traces_out` receives the ranking calls' traces (their cost is spent too)."""
    if not questions:
        raise UserError("baselines: no training / validation questions to rank the pool on "
                        "(name the anchor with --anchor)")

    bl = Baselines(task, roleset, models, BaselineConfig(ranking=tuple(models)))
    jobs = [bl.job(f"single:{m}", q) for m in models for q in questions]
    flat = await run_many(jobs, client, max_in_flight=max_in_flight)
    if traces_out is not None:
        traces_out.extend(flat)
    n = len(questions)
    traces = {f"single:{m}": flat[i * n:(i + 1) * n] for i, m in enumerate(models)}
    acc = {m: float(np.mean([bool(t.correct) for t in traces[f"single:{m}"]])) for m in models}
    return sorted(acc.items(), key=lambda kv: -kv[1])  # stable: ties keep pool order


def result_rows(traces_by_method: dict[str, list[Trace]]) -> list[dict[str, Any]]:
    """One row per method with the `hieramas baselines` columns (per-query means, p50 latency).

    Accuracy is over all n queries with failed episodes counted as not correct; `n_failed` says
    how many failed (and the CLI prints their reasons), so a failure is never silently a 0.
    """
    return [summarize(m, ts) for m, ts in traces_by_method.items()]
