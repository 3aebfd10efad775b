"""Baselines: method names, the vote tie rule, call structure, cost accounting, failures."""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.baselines import (GROUPS, BaselineConfig, Baselines, SharedCalls,
                                         expand_methods, plurality, result_rows, run_baselines)
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask

TASK = LetterTask()
RS = get_roleset("synthetic")
MODELS = ["a", "b", "c", "d"]
REPLIES = {"a": "Answer: A", "b": "Answer: B", "c": "Answer: B", "d": "Answer: A"}


def run(methods, client=None, n=3, cfg=BaselineConfig(), models=MODELS):
    client = client or FakeClient(reply=lambda r: REPLIES[r.model])
    b = Baselines(TASK, RS, models, cfg)
    return asyncio.run(run_baselines(b, expand_methods(methods, models), TASK.questions(n), client, 8)), client


def test_plurality_picks_the_most_common_answer():
    assert plurality(["B", "A", "B"]) == "B"


def test_plurality_tie_goes_to_the_answer_given_first():
    assert plurality(["C", "A", "A", "C", "B"]) == "C"
    assert plurality(["A", "C", "C", "A"]) == "A"


def test_plurality_ignores_unparseable_answers():
    assert plurality([None, None, "D"]) == "D" and plurality([None]) is None


def test_bare_per_model_method_expands_to_every_model():
    assert expand_methods(["single", "vote"], ["x", "y"]) == ["single:x", "single:y", "vote"]


def test_default_methods_cover_every_group():
    names = expand_methods(None, ["x"])
    assert {n.partition(":")[0] for n in names} == set(GROUPS)


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown method 'tot'"):
        expand_methods(["tot"], ["x"])


def test_method_model_outside_the_pool_is_a_user_error():
    with pytest.raises(UserError, match="single:z"):
        expand_methods(["single:z"], ["x"])


def test_single_accuracy_is_the_models_accuracy():
    traces, _ = run(["single"])
    acc = {r["method"]: r["accuracy"] for r in result_rows(traces)}
    assert acc == {"single:a": 1.0, "single:b": 0.0, "single:c": 0.0, "single:d": 1.0}


def test_vote_breaks_the_tie_by_pool_order():
    traces, _ = run(["vote"])  # A (a), B (b), B (c), A (d): tie, a came first
    assert all(t.answer == "A" and t.correct for t in traces["vote"])


def test_oracle_is_right_when_any_model_is_right():
    client = FakeClient(reply=lambda r: "Answer: A" if r.model == "c" else "Answer: D")
    traces, _ = run(["oracle", "vote"], client)
    assert all(t.correct for t in traces["oracle"])
    assert not any(t.correct for t in traces["vote"])


def test_single_vote_and_oracle_share_one_call_per_model():
    traces, client = run(["single", "vote", "oracle"], n=2)
    assert len(client.requests) == 2 * len(MODELS)
    assert all(c.cache_hit for c in traces["oracle"][0].calls)
    assert traces["vote"][0].cost_usd == pytest.approx(sum(t.cost_usd for m, ts in traces.items()
                                                           if m.startswith("single:") for t in ts[:1]))


@pytest.mark.parametrize("method", ["single:a", "cot:a", "sc:a", "moa", "moa2", "debate", "vote",
                                    "chain", "star", "complete", "layered", "random", "oracle"])
def test_trace_cost_is_the_sum_of_its_calls(method):
    traces, _ = run([method], n=2)
    row = result_rows(traces)[0]
    per_query = [sum(c.cost_usd for c in t.calls) for t in traces[method]]
    assert row["cost_usd"] == pytest.approx(sum(per_query) / 2) and row["cost_usd"] > 0
    assert row["calls"] == pytest.approx(sum(len(t.calls) for t in traces[method]) / 2)


def test_sc_draws_distinct_samples_at_its_temperature():
    _, client = run(["sc:a"], n=1, cfg=BaselineConfig(sc_samples=4, sc_temperature=0.9))
    assert sorted(r.sample_index for r in client.requests) == [0, 1, 2, 3]
    assert {r.temperature for r in client.requests} == {0.9}


def test_moa_calls_every_model_then_the_anchor():
    traces, client = run(["moa"], n=1, cfg=BaselineConfig(anchor="c"))
    positions = [(r.model, r.metadata["position"]) for r in client.requests]
    assert sorted(positions) == sorted([(m, "proposer") for m in MODELS] + [("c", "aggregator")])
    agg = [r for r in client.requests if r.metadata["position"] == "aggregator"][0]
    assert agg.metadata["context_answers"] == ["A", "B", "B", "A"]


def test_moa2_adds_a_full_layer():
    traces, _ = run(["moa2"], n=1)
    assert traces["moa2"][0].n_calls == 2 * len(MODELS) + 1


def test_debate_runs_agents_times_rounds_and_reads_own_answer_first():
    traces, client = run(["debate"], n=1, cfg=BaselineConfig(ranking=tuple(MODELS)))
    assert traces["debate"][0].n_calls == 6
    second = [r for r in client.requests if r.metadata["context_answers"]]
    b_round2 = [r for r in second if r.model == "b"][0]
    assert b_round2.metadata["context_answers"] == ["B", "A", "B"]


def test_fixed_topology_runs_a_design_over_all_roles():
    traces, _ = run(["chain"], n=1, cfg=BaselineConfig(fixed_k=2))
    t = traces["chain"][0]
    assert [n.role for n in t.nodes] == list(RS.names)
    assert t.design["edges"] == [[i, i + 1] for i in range(len(RS.names) - 1)]
    assert t.n_calls == len(RS.names) * 3 + 1


def test_random_topology_is_reproducible_from_the_seed():
    a, _ = run(["random"], n=3, cfg=BaselineConfig(seed=5))
    b, _ = run(["random"], n=3, cfg=BaselineConfig(seed=5))
    assert [t.design for t in a["random"]] == [t.design for t in b["random"]]


def test_failed_model_marks_episodes_failed_not_wrong():
    client = FakeClient(reply=lambda r: "Answer: A", fail=lambda r: r.model == "d")
    traces, _ = run(["vote", "single:a"], client, n=2)
    assert all(t.failed and t.correct is None for t in traces["vote"])
    assert "call to d failed" in traces["vote"][0].failure_reason
    rows = {r["method"]: r for r in result_rows(traces)}
    assert rows["vote"]["n_failed"] == 2 and rows["single:a"]["n_failed"] == 0


def test_shared_calls_retry_a_failed_request():
    attempts = []

    def fail_once(r):
        attempts.append(r)
        return len(attempts) == 1

    shared = SharedCalls(FakeClient(fail=fail_once))
    b = Baselines(TASK, RS, ["a"], BaselineConfig())
    q = TASK.questions(1)[0]

    async def go():
        first = await b.job("single:a", q)(shared)
        second = await b.job("single:a", q)(shared)
        return first, second

    first, second = asyncio.run(go())
    assert first.failed and not second.failed and len(attempts) == 2


def test_unknown_anchor_is_a_user_error():
    with pytest.raises(UserError, match="anchor 'z'"):
        Baselines(TASK, RS, MODELS, BaselineConfig(anchor="z"))


def test_vote_order_sets_the_tie_break_priority():
    traces, _ = run(["vote"], cfg=BaselineConfig(vote_order=("b", "a", "c", "d")))
    assert all(t.answer == "B" for t in traces["vote"])


def test_vote_order_must_list_every_pool_model():
    with pytest.raises(UserError, match="vote_order"):
        Baselines(TASK, RS, MODELS, BaselineConfig(vote_order=("a", "b")))
