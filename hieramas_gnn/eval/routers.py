"""Baselines a user would deploy that are *fitted* on training questions: router, cascade, best single.

All three are fitted on the single-model outcomes of training (and validation) questions only —
never on the questions they are evaluated on — and then run on new questions through the same
client and cost accounting as every other baseline (their calls are exactly the `single:<m>`
calls, so `SharedCalls` and the rollout cache share them).

- `best_single`: the pool model with the best mean reward on train + val (`fit_best_single`).
- `router` (RouterBench / RouterDC-style): per model, a logistic regression predicts from the
  query embedding whether the model answers correctly (trained on the training split; its
  regularisation C chosen on val); a query goes to the model with the best *expected* reward
  p·r(right, c̄) + (1 − p)·r(wrong, c̄), c̄ the model's mean training cost (`fit_router`).
- `cascade` (FrugalGPT-style, agreement as the score): a chain of models ordered by mean cost;
  ask the first `agree` models (in parallel); if `agree` answers agree, stop with that answer,
  else ask the next model, and so on; at the end of the chain the last (dearest) model's answer
  stands. The chain (2..`max_len` models, in cost order) and `agree` are chosen on train + val by
  mean reward (`fit_cascade`), simulated exactly from the single-model outcomes.

The reward of a (correct, cost) pair is a callable (`RewardFn`), e.g. a `train.rewards.Reward` with
λ; the default is accuracy. `fit_routed_baselines` fits all three and registers them with a
`Baselines` (methods `router`, `cascade`, `best_single`), plus, when asked for, the peers of
`eval/peer_routers.py` (`best_per_task`, `knn_router`, `contrastive_router`) and
`eval/design_per_task.py` (`best_design_per_task`), fitted on the same outcomes and embeddings.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hieramas_gnn.errors import UserError
from hieramas_gnn.eval import peer_routers as P
from hieramas_gnn.eval.baselines import run_baselines
from hieramas_gnn.eval.design_per_task import fit_designs_per_task
from hieramas_gnn.llm.types import LLMCallError
from hieramas_gnn.mas.supernode import Episode, now_ms
from hieramas_gnn.mas.trace import Trace, component_of
from hieramas_gnn.progress import bar, phase
from hieramas_gnn.tasks.base import Question

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (correct [..] 0/1, cost [..] USD) -> reward
Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> [Q, F]
ROUTED = ("router", "cascade", "best_single", "best_per_task", "knn_router", "contrastive_router",
          "best_design_per_task")
ROUTED_TO_ONE = ("router", "knn_router", "contrastive_router")  # each query goes to one model
ROUTER_C = (0.1, 1.0, 10.0)


def accuracy_reward(correct: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return np.asarray(correct, dtype=float)


def query_embedder(kind: str, cache_dir: str | None, hashing_dim: int = 64, device: str = "cpu") -> Embed:
    """texts -> [Q, F] query embeddings for the router: the policy's encoder (`minilm` or
    `hashing`), behind its on-disk cache."""
    from hieramas_gnn.policy import features as F  # lazy: loads torch

    inner = F.HashingEmbedder(hashing_dim) if kind == "hashing" else F.MiniLMEmbedder(device=device)
    cached = F.CachedEmbedder(inner, cache_dir)
    return lambda texts: cached.embed(list(texts)).numpy()


# ---------------------------------------------------------------- outcomes


@dataclass
class SingleOutcomes:
    """Single-model outcomes: answers [Q][M] (extracted; None unparsed or failed), correct [Q, M],
    cost [Q, M] USD, for `question_ids` × `models`. A failed call counts as wrong, at its cost."""

    question_ids: list[str]
    models: list[str]
    answers: list[list[str | None]]
    correct: np.ndarray
    cost: np.ndarray

    @classmethod
    def from_traces(cls, traces: dict[str, list[Trace]], models: Sequence[str]) -> SingleOutcomes:
        """From `run_baselines` output over the methods `single:<m>` (same questions, same order)."""
        per = [traces[f"single:{m}"] for m in models]
        ids = [t.question_id for t in per[0]]
        answers = [[None if ts[q].failed else ts[q].answer for ts in per] for q in range(len(ids))]
        correct = np.array([[bool(ts[q].correct) for ts in per] for q in range(len(ids))], dtype=bool)
        cost = np.array([[ts[q].cost_usd for ts in per] for q in range(len(ids))], dtype=float)
        return cls(ids, list(models), answers, correct.reshape(len(ids), len(models)),
                   cost.reshape(len(ids), len(models)))

    def concat(self, other: SingleOutcomes) -> SingleOutcomes:
        if other.models != self.models:
            raise ValueError("outcomes over different models cannot be joined")
        return SingleOutcomes(self.question_ids + other.question_ids, self.models, self.answers + other.answers,
                              np.concatenate([self.correct, other.correct]), np.concatenate([self.cost, other.cost]))


async def collect_single_outcomes(baselines: Any, questions: Sequence[Question], client: Any,
                                  max_in_flight: int = 32, on_done: Callable | None = None) -> SingleOutcomes:
    """Every pool model's direct answer on `questions` (the `single:<m>` baseline calls);
    `on_done(trace)` after each answer (a progress bar's update)."""
    if not questions:
        raise UserError("routed baselines: no training questions to fit on")
    methods = [f"single:{m}" for m in baselines.models]
    traces = await run_baselines(baselines, methods, questions, client, max_in_flight, on_done=on_done)
    return SingleOutcomes.from_traces(traces, baselines.models)


# ---------------------------------------------------------------- best single


def fit_best_single(outcomes: SingleOutcomes, reward: RewardFn = accuracy_reward) -> str:
    """The model with the best mean reward on these outcomes (ties: the cheaper, then pool order)."""
    mean = reward(outcomes.correct, outcomes.cost).mean(0)  # [M]
    price = outcomes.cost.mean(0)  # [M]
    best = min(range(len(outcomes.models)), key=lambda m: (-mean[m], price[m], m))
    return outcomes.models[best]


# ---------------------------------------------------------------- router


@dataclass
class Router:
    """Per-model correctness classifiers over query embeddings, and each model's mean cost."""

    models: list[str]
    classifiers: list[Any]  # a fitted LogisticRegression, or a float: a constant P(correct)
    mean_cost: np.ndarray  # [M]
    reward: RewardFn
    C: float = 1.0

    def proba(self, x: np.ndarray) -> np.ndarray:
        """P(model m answers query q correctly). Shapes: x [Q, F] -> [Q, M]."""
        cols = [np.full(len(x), c) if isinstance(c, float) else c.predict_proba(x)[:, 1] for c in self.classifiers]
        return np.stack(cols, axis=1)

    def expected_reward(self, x: np.ndarray) -> np.ndarray:
        """p·r(1, c̄) + (1 − p)·r(0, c̄). Shapes: [Q, F] -> [Q, M]."""
        p = self.proba(x)
        right = self.reward(np.ones(len(self.models)), self.mean_cost)  # [M]
        wrong = self.reward(np.zeros(len(self.models)), self.mean_cost)  # [M]
        return p * right[None, :] + (1.0 - p) * wrong[None, :]

    def choose(self, x: np.ndarray) -> list[str]:
        """The model each query is routed to. Shapes: [Q, F] -> Q names."""
        return [self.models[i] for i in np.argmax(self.expected_reward(x), axis=1)]


def _fit_classifiers(x: np.ndarray, correct: np.ndarray, C: float, seed: int) -> list[Any]:
    from sklearn.linear_model import LogisticRegression

    out: list[Any] = []
    for m in range(correct.shape[1]):
        y = correct[:, m].astype(int)
        if y.min() == y.max():  # always right or always wrong in training: a smoothed constant
            out.append(float((y.sum() + 1) / (len(y) + 2)))
        else:
            out.append(LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, y))
    return out


def fit_router(x_train: np.ndarray, train: SingleOutcomes, x_val: np.ndarray | None = None,
               val: SingleOutcomes | None = None, reward: RewardFn = accuracy_reward,
               Cs: Sequence[float] = ROUTER_C, seed: int = 0) -> Router:
    """Fit on the training outcomes; with val, pick C from `Cs` by the routed mean val reward."""
    if x_train.shape[0] != train.correct.shape[0]:
        raise ValueError(f"{x_train.shape[0]} embeddings for {train.correct.shape[0]} training questions")
    mean_cost = train.cost.mean(0)
    best: tuple[float, Router] | None = None
    for C in (Cs if val is not None and x_val is not None else (1.0,)):
        router = Router(train.models, _fit_classifiers(x_train, train.correct, C, seed), mean_cost, reward, C)
        if val is None or x_val is None:
            return router
        idx = np.argmax(router.expected_reward(x_val), axis=1)
        rows = np.arange(len(idx))
        score = float(reward(val.correct[rows, idx], val.cost[rows, idx]).mean())
        if best is None or score > best[0]:
            best = (score, router)
    assert best is not None
    return best[1]


# ---------------------------------------------------------------- cascade


@dataclass(frozen=True)
class CascadePlan:
    """Ask `chain` in order (the first `agree` at once); stop when `agree` answers agree."""

    chain: tuple[str, ...]
    agree: int = 2

    def __post_init__(self) -> None:
        if len(self.chain) < 2 or not 2 <= self.agree <= len(self.chain):
            raise ValueError(f"a cascade needs >= 2 models and 2 <= agree <= len(chain), got {self}")


def cascade_step(answers: Sequence[str | None], agree: int, last: bool) -> tuple[bool, str | None]:
    """(stop?, answer) after the answers so far: an answer given `agree` times stops the
    cascade; at the end of the chain the last answer stands."""
    counts: dict[str, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
            if counts[a] >= agree:
                return True, a
    return last, answers[-1] if last else None


def simulate_cascade(plan: CascadePlan, outcomes: SingleOutcomes) -> tuple[np.ndarray, np.ndarray]:
    """(correct [Q], cost [Q]) of the cascade on these questions, from the single outcomes."""
    col = [outcomes.models.index(m) for m in plan.chain]
    correct, cost = np.zeros(len(outcomes.question_ids), bool), np.zeros(len(outcomes.question_ids))
    for q, row in enumerate(outcomes.answers):
        answers = [row[c] for c in col[: plan.agree]]
        n = plan.agree
        while True:
            stop, answer = cascade_step(answers, plan.agree, n == len(col))
            if stop:
                break
            answers.append(row[col[n]])
            n += 1
        asked = col[:n]
        cost[q] = outcomes.cost[q, asked].sum()
        # the answer is the extracted string; it is right exactly when a model that gave it was right
        correct[q] = any(outcomes.correct[q, c] for c in asked if row[c] == answer and answer is not None)
    return correct, cost


def fit_best_per_task(outcomes: Any, labels: Sequence[str], reward: Any) -> dict[str, str]:
    """{task label: the model with the best mean reward on its questions} (ties: cheaper, then
    pool order). Shapes: outcomes over Q questions, labels [Q]."""
    labels = np.asarray(list(labels))
    out = {}
    for label in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == label)
        part = SingleOutcomes([outcomes.question_ids[i] for i in rows], outcomes.models,
                              [outcomes.answers[i] for i in rows], outcomes.correct[rows], outcomes.cost[rows])
        out[label] = fit_best_single(part, reward)
    return out


def fit_cascade(outcomes: SingleOutcomes, reward: RewardFn = accuracy_reward, max_len: int = 3) -> CascadePlan:
    """The best chain (models in mean-cost order, 2..max_len of them) and `agree` on `outcomes`."""
    order = sorted(range(len(outcomes.models)), key=lambda m: (outcomes.cost[:, m].mean(), m))
    best: tuple[float, CascadePlan] | None = None
    for n in range(2, min(max_len, len(order)) + 1):
        for combo in itertools.combinations(order, n):
            for agree in range(2, n + 1):
                plan = CascadePlan(tuple(outcomes.models[m] for m in combo), agree)
                correct, cost = simulate_cascade(plan, outcomes)
                score = float(reward(correct, cost).mean())
                if best is None or score > best[0] + 1e-12:
                    best = (score, plan)
    if best is None:
        raise UserError("cascade: the pool needs at least 2 models")
    return best[1]


# ---------------------------------------------------------------- running them


@dataclass
class RoutedBaselines:
    """The fitted routed baselines and the jobs that run them (registered with a `Baselines`)."""

    baselines: Any
    best_single: str
    router: Router
    cascade: CascadePlan
    embed: Embed
    per_task: dict[str, str] = field(default_factory=dict)  # best_per_task: task label -> model
    knn: Any = None  # peer_routers.KnnRouter
    contrastive: Any = None  # peer_routers.ContrastiveRouter
    designs: Any = None  # design_per_task.DesignsPerTask
    _routes: dict[tuple[str, str], str] = field(default_factory=dict)

    def route(self, questions: Sequence[Question], method: str = "router") -> list[str]:
        """The model each question goes to under a routing method (`router`, `knn_router`,
        `contrastive_router`), embedded in one batch and remembered."""
        chooser = {"router": self.router, "knn_router": self.knn, "contrastive_router": self.contrastive}[method]
        todo = [q for q in questions if (method, q.id) not in self._routes]
        if todo:
            for q, m in zip(todo, chooser.choose(np.asarray(self.embed([q.text for q in todo])))):
                self._routes[(method, q.id)] = m
        return [self._routes[(method, q.id)] for q in questions]

    def job(self, method: str, question: Question):
        if method == "best_single":
            return _renamed(self.baselines.job(f"single:{self.best_single}", question), method)
        if method in ROUTED_TO_ONE:
            return _renamed(self.baselines.job(f"single:{self.route([question], method)[0]}", question), method)
        if method == "best_per_task":
            model = self.per_task.get(P.task_label(question), self.best_single)  # an unseen task: best single
            return _renamed(self.baselines.job(f"single:{model}", question), method)
        if method == "best_design_per_task":
            design = self.designs.design_for(question)
            return lambda client: self.baselines._design_job(method, design, question, client)
        if method == "cascade":
            return lambda client: self._cascade(question, client)
        raise UserError(f"routed baselines: unknown method {method!r} (known: {', '.join(ROUTED)})")

    async def _cascade(self, question: Question, client: Any) -> Trace:
        import asyncio

        b, plan = self.baselines, self.cascade
        ep = Episode(b.task, question, client, b.roleset, 0, b.cfg.temperature)
        trace = Trace(task=b.task.name, question_id=question.id, method="cascade",
                      component=component_of(b.task, question))
        start = now_ms()

        async def ask(i: int) -> tuple[str | None, float]:
            rec = await b._ask(ep, plan.chain[i], "single_user", i)  # the very `single:<m>` request
            return ep.task.extract(rec.text, question), rec.latency_ms

        try:
            first = await asyncio.gather(*(ask(i) for i in range(plan.agree)))
            answers, latency = [a for a, _ in first], max(t for _, t in first)
            n = plan.agree
            while True:
                stop, answer = cascade_step(answers, plan.agree, n == len(plan.chain))
                if stop:
                    break
                a, t = await ask(n)
                answers, latency, n = answers + [a], latency + t, n + 1
            trace.answer, trace.latency_ms = answer, latency
            trace.correct = ep.task.is_correct(answer, question)
        except LLMCallError as exc:
            trace.fail(ep.failure or str(exc))
        trace.wall_ms = now_ms() - start
        trace.calls = [c for _, c in sorted(ep.calls, key=lambda oc: oc[0])]
        return trace

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"best_single": self.best_single, "router_C": self.router.C,
                               "cascade": {"chain": list(self.cascade.chain), "agree": self.cascade.agree}}
        if self.per_task:
            out["best_per_task"] = dict(self.per_task)
        if self.knn is not None:
            out["knn_router_k"] = self.knn.k
        if self.contrastive is not None:
            out["contrastive_router_epoch"] = self.contrastive.epoch
        if self.designs is not None:
            out["best_design_per_task"] = self.designs.describe()
        return out


def _renamed(job: Callable, method: str) -> Callable:
    async def run(client: Any) -> Trace:
        trace = await job(client)
        trace.method = method
        return trace
    return run


async def fit_routed_baselines(baselines: Any, train: Sequence[Question], val: Sequence[Question], client: Any,
                               embed: Embed, reward: RewardFn = accuracy_reward, max_in_flight: int = 32,
                               cascade_max_len: int = 3, seed: int = 0,
                               methods: Sequence[str] = ("router", "cascade", "best_single"),
                               design_search_limit: int = 200) -> RoutedBaselines:
    """Fit `best_single` and `cascade` on train + val, `router` on train (C on val), from the
    pool's single answers to those questions, and of the other `ROUTED` methods those in
    `methods` (`best_per_task` on train + val, `knn_router` / `contrastive_router` on train with
    their setting chosen on val, `best_design_per_task` searched on at most
    `design_search_limit` train + val questions per task); register them with `baselines`.
    Progress on stderr: a bar over the single answers, then one line per fitted method."""
    t0 = time.monotonic()
    with bar(len(baselines.models) * (len(train) + len(val)),
             f"fitting routed baselines: single answers on {len(train)} train + {len(val)} val questions") as shown:
        tr = await collect_single_outcomes(baselines, train, client, max_in_flight, on_done=shown)
        va = await collect_single_outcomes(baselines, val, client, max_in_flight, on_done=shown) if val else None
    both = tr.concat(va) if va is not None else tr
    x_tr = np.asarray(embed([q.text for q in train]))
    x_va = np.asarray(embed([q.text for q in val])) if val else None
    routed = RoutedBaselines(baselines, fit_best_single(both, reward),
                             fit_router(x_tr, tr, x_va, va, reward, seed=seed),
                             fit_cascade(both, reward, cascade_max_len), embed)
    phase(f"fitted best_single ({routed.best_single}), router (C={routed.router.C:g}), cascade "
          f"({' -> '.join(routed.cascade.chain)}, agree {routed.cascade.agree}) in {time.monotonic() - t0:.0f}s")
    fit_on = [*train, *val]
    if "best_per_task" in methods:
        routed.per_task = fit_best_per_task(both, [P.task_label(q) for q in fit_on], reward)
        phase(f"fitted best_per_task ({len(routed.per_task)} tasks)")
    if "knn_router" in methods:
        routed.knn = P.fit_knn_router(x_tr, tr, x_va, va, reward)
        phase(f"fitted knn_router (k={routed.knn.k})")
    if "contrastive_router" in methods:
        t1 = time.monotonic()
        routed.contrastive = P.fit_contrastive_router(x_tr, tr, x_va, va, reward, P.ContrastiveSettings(seed=seed))
        phase(f"fitted contrastive_router (epoch {routed.contrastive.epoch}) in {time.monotonic() - t1:.0f}s")
    if "best_design_per_task" in methods:
        t1 = time.monotonic()
        routed.designs = await fit_designs_per_task(baselines.task, baselines.roleset, client, fit_on, both, reward,
                                                    routed.best_single, design_search_limit, max_in_flight)
        phase(f"fitted best_design_per_task in {time.monotonic() - t1:.0f}s")
    fitted = {"router", "cascade", "best_single", *methods}
    for name in (n for n in ROUTED if n in fitted):
        baselines.register(name, lambda q, _name=name: routed.job(_name, q))
    return routed
