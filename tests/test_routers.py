"""Fitted baselines (`eval/routers.py`): best single, learned router, FrugalGPT-style cascade.

Planted world for the end-to-end tests: queries of two kinds ("alpha", "beta"); model `a` is
right exactly on alpha, `b` exactly on beta, `c` always (and is 40x dearer per token).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.baselines import BaselineConfig, Baselines, expand_methods, run_baselines
from hieramas_gnn.eval.routers import (
    CascadePlan, SingleOutcomes, cascade_step, collect_single_outcomes, fit_best_single, fit_cascade,
    fit_routed_baselines, fit_router, simulate_cascade,
)
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask
from hieramas_gnn.policy.features import HashingEmbedder
from hieramas_gnn.tasks.base import Question

TASK = LetterTask()
RS = get_roleset("synthetic")
MODELS = ["a", "b", "c"]
PRICE = {"a": 1e-6, "b": 1e-6, "c": 4e-5}


def _outcomes(correct, cost, answers=None, models=("a", "b", "c")):
    correct = np.asarray(correct, bool)
    if answers is None:
        answers = [["A" if ok else "B" for ok in row] for row in correct]
    return SingleOutcomes([f"q{i}" for i in range(len(correct))], list(models), answers, correct,
                          np.asarray(cost, float))


def linear(lam):
    return lambda correct, cost: np.asarray(correct, float) - lam * np.asarray(cost, float)


# ---------------------------------------------------------------- best single


def test_best_single_is_the_most_accurate_model_by_default():
    o = _outcomes([[1, 0, 1], [0, 1, 1], [1, 0, 1]], [[1, 1, 9]] * 3)
    assert fit_best_single(o) == "c"


def test_best_single_under_a_cost_aware_reward_takes_price_into_account():
    o = _outcomes([[1, 0, 1], [1, 0, 1], [0, 1, 1]], [[0.01, 0.01, 1.0]] * 3)
    assert fit_best_single(o, linear(1.0)) == "a"


# ---------------------------------------------------------------- router


def _kinds(n, seed=0):
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 2  # 0 alpha, 1 beta
    x = np.stack([1.0 - kind, kind.astype(float)], axis=1) + 0.1 * rng.standard_normal((n, 2))
    correct = np.stack([kind == 0, kind == 1, np.ones(n, bool)], axis=1)
    return x, kind, correct


def test_router_sends_each_query_kind_to_the_model_that_is_right_on_it():
    x, kind, correct = _kinds(40)
    router = fit_router(x, _outcomes(correct, np.tile([1e-3, 1e-3, 0.2], (40, 1))), reward=linear(1.0))
    x_new, kind_new, _ = _kinds(20, seed=1)
    assert router.choose(x_new) == ["a" if k == 0 else "b" for k in kind_new]


def test_router_with_free_money_and_no_signal_picks_the_always_right_model():
    x, _, correct = _kinds(40)
    router = fit_router(np.zeros_like(x), _outcomes(correct, np.zeros((40, 3))))
    assert set(router.choose(x)) == {"c"}


def test_router_picks_its_regularisation_on_validation():
    x, _, correct = _kinds(40)
    xv, _, cv = _kinds(20, seed=2)
    router = fit_router(x, _outcomes(correct, np.zeros((40, 3))), xv, _outcomes(cv, np.zeros((20, 3))),
                        Cs=(0.5, 2.0))
    assert router.C in (0.5, 2.0)


def test_router_expected_reward_is_probability_weighted():
    x, _, correct = _kinds(40)
    router = fit_router(x, _outcomes(correct, np.tile([0.1, 0.1, 0.5], (40, 1))), reward=linear(1.0))
    p, er = router.proba(x), router.expected_reward(x)
    assert np.allclose(er, p - np.array([0.1, 0.1, 0.5])[None, :])


# ---------------------------------------------------------------- cascade


def test_cascade_step_stops_on_agreement_and_else_lets_the_last_answer_stand():
    assert cascade_step(["A", "A"], 2, last=False) == (True, "A")
    assert cascade_step(["A", "B"], 2, last=False) == (False, None)
    assert cascade_step(["A", "B", "C"], 2, last=True) == (True, "C")
    assert cascade_step([None, None], 2, last=False) == (False, None)


def test_simulated_cascade_pays_only_for_the_models_it_asked():
    answers = [["A", "A", "A"], ["A", "B", "A"], ["B", "C", "D"]]
    correct = [[1, 1, 1], [1, 0, 1], [0, 0, 0]]
    o = _outcomes(correct, [[1, 2, 10]] * 3, answers)
    ok, cost = simulate_cascade(CascadePlan(("a", "b", "c")), o)
    assert ok.tolist() == [True, True, False] and cost.tolist() == [3, 13, 13]


def test_fit_cascade_finds_cheap_agreement_with_escalation_to_the_dear_model():
    # a and b agree (and are right) on half the queries; c is right everywhere but dear
    answers = [["A", "A", "A"] if i % 2 else ["B", "C", "A"] for i in range(20)]
    correct = [[i % 2, i % 2, 1] for i in range(20)]
    o = _outcomes(correct, [[0.01, 0.01, 0.3]] * 20, answers)
    plan = fit_cascade(o, linear(1.0))
    assert plan == CascadePlan(("a", "b", "c"), 2)


def test_a_cascade_needs_two_models():
    with pytest.raises(ValueError):
        CascadePlan(("a",), 2)


# ---------------------------------------------------------------- end to end (client, no test leakage)


def _questions(n, start=0):
    return [Question(f"q/{i}", "letters", f"{'alpha' if i % 2 else 'beta'} question number {i}? (A) a (B) b",
                     "A", {"domain": "letters"}) for i in range(start, start + n)]


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


def _fitted(train, val, lam=1000.0):
    client = PricedClient(reply=_reply)
    b = Baselines(TASK, RS, MODELS, BaselineConfig())
    routed = asyncio.run(fit_routed_baselines(b, train, val, client, _embed, reward=linear(lam)))
    return b, routed, client


def test_fitting_sees_only_the_training_and_validation_questions():
    train, val, test = _questions(40), _questions(10, 40), _questions(10, 50)
    b, _, client = _fitted(train, val)
    asked = {r.metadata["question_id"] for r in client.requests}
    assert asked == {q.id for q in train + val} and not asked & {q.id for q in test}


def test_fitting_shows_progress_over_the_single_answers_and_a_line_per_fitted_method(capsys):
    _, routed, _ = _fitted(_questions(40), _questions(10, 40))
    err = capsys.readouterr().err
    assert f"single answers on 40 train + 10 val questions: {len(MODELS) * 50}/{len(MODELS) * 50}," in err
    assert f"hieramas: fitted best_single ({routed.best_single}), router (C=" in err
    assert f"cascade ({' -> '.join(routed.cascade.chain)}, agree {routed.cascade.agree})" in err


def test_fitted_methods_run_on_new_questions_through_the_client():
    b, routed, _ = _fitted(_questions(40), _questions(10, 40))
    test = _questions(10, 50)
    traces = asyncio.run(run_baselines(b, ["router", "best_single", "cascade"], test, PricedClient(reply=_reply)))
    assert [t.correct for t in traces["router"]] == [True] * 10  # a on alpha, b on beta
    assert all(len(t.calls) == 1 and t.calls[0].model in ("a", "b") for t in traces["router"])
    assert [t.method for t in traces["best_single"]] == ["best_single"] * 10
    assert {t.calls[0].model for t in traces["best_single"]} == {routed.best_single}


def test_cascade_run_on_a_client_matches_its_simulation():
    b, routed, _ = _fitted(_questions(40), _questions(10, 40))
    test = _questions(12, 50)
    client = PricedClient(reply=_reply)
    traces = asyncio.run(run_baselines(b, ["cascade"], test, client))["cascade"]
    sim_ok, sim_cost = simulate_cascade(routed.cascade, asyncio.run(collect_single_outcomes(b, test, client)))
    assert [t.correct for t in traces] == sim_ok.tolist()
    assert [t.cost_usd for t in traces] == pytest.approx(sim_cost.tolist())


def test_fitted_methods_are_known_names_but_need_fitting_first():
    assert expand_methods(["router", "cascade", "best_single"], MODELS) == ["router", "cascade", "best_single"]
    b = Baselines(TASK, RS, MODELS, BaselineConfig())
    with pytest.raises(UserError, match="fitted on training questions"):
        b.job("router", _questions(1)[0])
