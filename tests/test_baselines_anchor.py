"""Fair anchors: the synthesizer / aggregator / decision model and the debate agents of the
baselines are chosen on training + validation data, never by the pool's order."""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.baselines import (BaselineConfig, Baselines, anchor_questions, expand_methods,
                                         rank_models, run_baselines)
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask

TASK = LetterTask()
RS = get_roleset("synthetic")
POOL = ["weak1", "weak2", "best", "good"]  # the pool's first model is a weak one
REPLIES = {"weak1": "Answer: B", "weak2": "Answer: C", "best": "Answer: A", "good": "Answer: A"}


def client():
    return FakeClient(reply=lambda r: REPLIES[r.model])


def run(methods, cfg=BaselineConfig(), n=2):
    c = client()
    b = Baselines(TASK, RS, POOL, cfg)
    traces = asyncio.run(run_baselines(b, expand_methods(methods, POOL), TASK.questions(n), c, 8))
    return b, traces, c


def test_rank_models_orders_the_pool_by_single_accuracy_ties_in_pool_order():
    ranked = asyncio.run(rank_models(TASK, RS, POOL, TASK.questions(4), client()))
    assert [m for m, _ in ranked] == ["best", "good", "weak1", "weak2"]
    assert dict(ranked)["best"] == 1.0 and dict(ranked)["weak1"] == 0.0


def test_moa_aggregator_defaults_to_the_best_model_not_the_pools_first():
    b, _, c = run(["moa"])
    agg = [r.model for r in c.requests if r.metadata["position"] == "aggregator"]
    assert b.anchor == "best" and set(agg) == {"best"}


def test_fixed_topology_decision_defaults_to_the_best_model():
    b, traces, _ = run(["star"], cfg=BaselineConfig(fixed_k=2))
    assert traces["star"][0].design["decision"] == "best"


def test_debate_agents_are_the_best_ranked_models():
    _, _, c = run(["debate"], n=1)
    assert {r.model for r in c.requests if r.metadata["position"] == "debate"} == {"best", "good", "weak1"}


def test_configured_anchor_is_used_without_ranking_the_pool():
    b, _, c = run(["moa"], cfg=BaselineConfig(anchor="good"), n=1)
    assert b.anchor == "good" and b.anchor_accuracy == {}
    assert [r.model for r in c.requests if r.metadata["position"] == "aggregator"] == ["good"]


def test_anchor_is_ranked_on_questions_disjoint_from_the_evaluated_ones():
    evaluated = TASK.questions(3)
    picked, overlap = anchor_questions(TASK, evaluated, limit=None)
    assert picked and not overlap and not {q.id for q in picked} & {q.id for q in evaluated}


def test_anchor_questions_overlap_is_flagged_when_the_whole_file_is_evaluated():
    picked, overlap = anchor_questions(TASK, TASK.load(), limit=None)
    assert picked and overlap


def test_fixed_design_without_an_anchor_is_a_user_error():
    with pytest.raises(UserError, match="anchor"):
        Baselines(TASK, RS, POOL, BaselineConfig()).fixed_design("chain")


def test_ranking_must_list_every_pool_model():
    with pytest.raises(UserError, match="ranking"):
        Baselines(TASK, RS, POOL, BaselineConfig(ranking=("best",)))


def test_ranking_calls_are_kept_for_the_cost_accounting():
    b, traces, c = run(["moa"], n=1)
    assert b.anchor_traces and len(b.anchor_traces) % len(POOL) == 0
    in_rows = sum(t.n_calls for ts in traces.values() for t in ts)
    assert in_rows + len(b.anchor_traces) == len(c.requests)
