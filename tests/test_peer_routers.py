"""Peers of a per-query policy (`eval/peer_routers.py`, `eval/design_per_task.py`): best model per
task, kNN router, RouterDC-style contrastive router, best design per task.

Planted world (as in test_routers.py): two kinds of query, `alpha` and `beta`; model `a` is right
exactly on alpha, `b` exactly on beta, `c` always (and is 40x dearer per token)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from hieramas_gnn.eval.baselines import BaselineConfig, Baselines, run_baselines
from hieramas_gnn.eval.peer_routers import (
    ContrastiveSettings,
    fit_contrastive_router,
    fit_knn_router,
    task_label,
)
from hieramas_gnn.eval.routers import (
    SingleOutcomes,
    fit_best_per_task,
    fit_routed_baselines,
)
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask
from hieramas_gnn.policy.features import HashingEmbedder
from hieramas_gnn.tasks.base import Question

TASK = LetterTask()
RS = get_roleset("synthetic")
MODELS = ["a", "b", "c"]
PRICE = {"a": 1e-6, "b": 1e-6, "c": 4e-5}


def linear(lam):
    return lambda correct, cost: np.asarray(correct, float) - lam * np.asarray(cost, float)


def _world(n: int, seed: int = 0) -> tuple[np.ndarray, SingleOutcomes, list[str]]:
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 2  # 0 alpha, 1 beta
    x = np.stack([1.0 - kind, kind.astype(float)], axis=1) + 0.1 * rng.standard_normal((n, 2))
    correct = np.stack([kind == 0, kind == 1, np.ones(n, bool)], axis=1)
    cost = np.tile([1e-3, 1e-3, 0.2], (n, 1))
    answers = [["A" if ok else "B" for ok in row] for row in correct]
    out = SingleOutcomes([f"q{i}" for i in range(n)], MODELS, answers, correct, cost)
    return x, out, ["alpha" if k == 0 else "beta" for k in kind]


def test_best_per_task_picks_each_task_its_own_model():
    _, out, labels = _world(20)
    assert fit_best_per_task(out, labels, linear(1.0)) == {"alpha": "a", "beta": "b"}
    assert fit_best_per_task(out, labels, linear(0.0))["alpha"] in ("a", "c")  # accuracy only: a tie, cheaper wins
    assert fit_best_per_task(out, labels, linear(0.0)) == {"alpha": "a", "beta": "b"}


def test_knn_router_sends_each_kind_to_its_model_and_picks_k_on_val():
    x, out, _ = _world(60)
    xv, val, _ = _world(20, seed=1)
    router = fit_knn_router(x, out, xv, val, linear(1.0), ks=(1, 5, 200))
    xt, _, labels = _world(30, seed=2)
    assert router.choose(xt) == ["a" if lab == "alpha" else "b" for lab in labels]
    assert router.k in (1, 5)  # 200 neighbours blur the two kinds


def test_contrastive_router_learns_the_planted_specialists():
    x, out, _ = _world(80)
    xv, val, _ = _world(20, seed=1)
    router = fit_contrastive_router(x, out, xv, val, linear(1.0),
                                    ContrastiveSettings(hidden=32, epochs=40, batch=32, eval_every=10, clusters=2, seed=0))
    xt, _, labels = _world(40, seed=2)
    assert router.choose(xt) == ["a" if lab == "alpha" else "b" for lab in labels]
    assert router.epoch in (10, 20, 30, 40) and len(router.history) == 4


def test_contrastive_router_is_seeded():
    x, out, _ = _world(40)
    s = ContrastiveSettings(hidden=32, epochs=5, batch=16, eval_every=5, clusters=2, seed=3)
    a = fit_contrastive_router(x, out, x, out, linear(1.0), s).scores(x)
    b = fit_contrastive_router(x, out, x, out, linear(1.0), s).scores(x)
    assert np.array_equal(a, b)


# ---------------------------------------------------------------- through the client


def _questions(n: int, start: int = 0) -> list[Question]:
    return [Question(f"q/{i}", "letters", f"{'alpha' if i % 2 else 'beta'} question number {i}? (A) a (B) b",
                     "A", {"domain": "letters", "component": "alpha" if i % 2 else "beta"})
            for i in range(start, start + n)]


class PricedClient(FakeClient):
    async def complete(self, request):
        record = await super().complete(request)
        return replace(record, cost_usd=PRICE[request.model] * (record.prompt_tokens + record.completion_tokens))


def _reply(request):
    i = int(request.metadata["question_id"].split("/")[1])
    right = request.model == "c" or (request.model == "a") == bool(i % 2)
    return "Answer: A" if right else ("Answer: B" if request.model == "a" else "Answer: C")


def _embed(texts):
    return HashingEmbedder(64).embed(list(texts)).numpy()


@pytest.fixture(scope="module")
def fitted():
    b = Baselines(TASK, RS, MODELS, BaselineConfig(anchor="c"))
    methods = ["best_per_task", "knn_router", "best_design_per_task"]
    routed = asyncio.run(fit_routed_baselines(b, _questions(40), _questions(10, 40), PricedClient(reply=_reply),
                                              _embed, reward=linear(1000.0), methods=methods, design_search_limit=10))
    return b, routed


def test_the_task_label_is_the_component():
    assert [task_label(q) for q in _questions(2)] == ["beta", "alpha"]
    assert task_label(Question("x", "gsm8k", "t", "1", {})) == "gsm8k"


def test_fitted_peers_run_on_new_questions_through_the_client(fitted):
    b, routed = fitted
    test = _questions(10, 50)
    traces = asyncio.run(run_baselines(b, ["best_per_task", "knn_router", "best_design_per_task"], test,
                                       PricedClient(reply=_reply)))
    assert routed.per_task == {"alpha": "a", "beta": "b"}
    assert all(t.correct for t in traces["best_per_task"]) and all(len(t.calls) == 1 for t in traces["best_per_task"])
    assert [t.method for t in traces["knn_router"]] == ["knn_router"] * 10
    assert all(t.correct for t in traces["best_design_per_task"])
    assert {t.calls[0].model for t in traces["best_design_per_task"]} == {"a", "b"}  # the cheap specialist alone
    assert set(routed.describe()["best_design_per_task"]) == {"alpha", "beta"}


def test_a_task_the_fit_never_saw_goes_to_the_best_single_model(fitted):
    b, routed = fitted
    q = Question("q/99", "letters", "gamma question? (A) a", "A", {"domain": "letters", "component": "gamma"})
    traces = asyncio.run(run_baselines(b, ["best_per_task", "best_design_per_task"], [q], PricedClient(reply=_reply)))
    assert traces["best_per_task"][0].calls[0].model == routed.best_single
    assert traces["best_design_per_task"][0].calls[0].model == routed.best_single


def test_peers_not_asked_for_are_not_fitted(fitted):
    b, routed = fitted
    assert routed.contrastive is None and "contrastive_router" not in b.fitted
