"""Executor: dataflow order, call metadata, skipped roles, failures, bounds, trace accounting."""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import Job, run_design, run_many
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask
from hieramas_gnn.mas.trace import Trace

RS = get_roleset("synthetic")  # planner (not gradable), solver, verifier, generalist
TASK = LetterTask()
Q = TASK.questions(1)[0]
M3 = Mixture(("a", "b", "c"), "a")
M1 = Mixture(("b",), "b")


def run(design, client, **kw) -> Trace:
    return asyncio.run(run_design(design, Q, TASK, client, RS, **kw))


def roles_called(client, position=None):
    return [r.metadata["role"] for r in client.requests
            if position is None or r.metadata["position"] == position]


def test_trace_records_every_call_and_totals_are_sums():
    d = Design(("planner", "solver", "verifier"), (M3, M1, M3), ((0, 1), (1, 2)), "a")
    client = FakeClient()
    trace = run(d, client)
    assert trace.n_calls == len(client.requests) == d.total_calls() == 10
    assert trace.cost_usd == pytest.approx(sum(c.cost_usd for c in trace.calls))
    assert trace.tokens == sum(c.tokens for c in trace.calls)
    assert trace.answer == "A" and trace.correct is True and not trace.failed


def test_every_request_carries_call_metadata_and_prompt_version():
    d = Design(("solver", "verifier"), (M3, M1), ((0, 1),), "a")
    client = FakeClient()
    run(d, client)
    for r in client.requests:
        assert {"task", "question_id", "role", "position", "context_answers"} <= set(r.metadata)
        assert r.metadata["task"] == "letters" and r.metadata["question_id"] == Q.id
        assert r.prompt_version == RS.prompt_version


def test_synthesizer_and_decision_context_answers_are_the_quoted_answers():
    answers = {"a": "Answer: A", "b": "Answer: B", "c": "no idea"}
    d = Design(("solver",), (M3,), (), "a")
    client = FakeClient(reply=lambda r: answers[r.model])
    run(d, client)
    synth = [r for r in client.requests if r.metadata["position"] == "synthesizer"][0]
    decision = [r for r in client.requests if r.metadata["position"] == "decision"][0]
    assert synth.metadata["context_answers"] == ["A", "B", None]
    assert decision.metadata["context_answers"] == ["A"]  # the synthesizer (model a) wrote A


def test_k1_supernode_makes_no_synthesizer_call():
    d = Design(("solver", "verifier"), (M1, M1), ((0, 1),), "a")
    client = FakeClient()
    run(d, client)
    assert roles_called(client, "synthesizer") == []
    assert len(client.requests) == 3


def test_skipped_role_makes_no_call_and_is_bridged():
    d = Design(("solver", "verifier", "generalist"), (M1, None, M1), ((0, 1), (1, 2)), "a")
    client = FakeClient(reply=lambda r: "Answer: C" if r.metadata["role"] == "solver" else "Answer: A")
    trace = run(d, client)
    assert "verifier" not in roles_called(client)
    gen = [r for r in client.requests if r.metadata["role"] == "generalist"][0]
    assert gen.metadata["context_answers"] == ["C"]  # reads the solver through the skipped verifier
    assert trace.nodes[1].skipped and trace.nodes[1].correct is None


def test_all_roles_skipped_the_decision_answers_alone():
    d = Design(("solver", "verifier"), (None, None), ((0, 1),), "b")
    client = FakeClient()
    trace = run(d, client)
    assert [r.metadata["position"] for r in client.requests] == ["decision"]
    assert client.requests[0].metadata["context_answers"] == []
    assert trace.correct is True


def test_node_scores_are_graded_and_ungradable_roles_say_none():
    d = Design(("planner", "solver"), (M1, M1), ((0, 1),), "a")
    client = FakeClient(reply=lambda r: "Answer: B" if r.metadata["role"] == "solver" else "Answer: A")
    trace = run(d, client)
    planner, solver = trace.nodes
    assert planner.gradable is False and planner.correct is None
    assert solver.answer == "B" and solver.correct is False


def test_failed_call_in_the_middle_marks_episode_failed_with_reason():
    d = Design(("solver", "verifier", "generalist"), (M1, M3, M1), ((0, 1), (1, 2)), "a")
    client = FakeClient(fail=lambda r: r.metadata["role"] == "verifier" and r.model == "c")
    trace = run(d, client)
    assert trace.failed and trace.correct is None and trace.answer is None
    assert "verifier/proposer call to c failed" in trace.failure_reason


def test_failed_call_stops_downstream_but_keeps_completed_calls():
    d = Design(("solver", "verifier", "generalist"), (M1, M3, M1), ((0, 1), (1, 2)), "a")
    client = FakeClient(fail=lambda r: r.metadata["role"] == "verifier" and r.model == "c")
    trace = run(d, client)
    assert "generalist" not in roles_called(client) and "decision" not in roles_called(client)
    # the solver call and the two sibling verifier proposers completed and were paid for
    assert [(c.role, c.model) for c in trace.calls] == [("solver", "b"), ("verifier", "a"), ("verifier", "b")]
    assert trace.nodes[0].correct is True and trace.nodes[1].text is None


def test_node_starts_when_its_last_predecessor_finishes_not_by_level():
    # solver (slow) and planner (fast) are both level 0; verifier depends only on planner.
    latency = {"solver": 0.3, "planner": 0.01, "verifier": 0.01, "decision": 0.0}
    done: list[str] = []

    class Timed(FakeClient):
        async def complete(self, request):
            await asyncio.sleep(latency[request.metadata["role"]])
            done.append(request.metadata["role"])
            return await super().complete(request)

    d = Design(("solver", "planner", "verifier"), (M1, M1, M1), ((1, 2),), "a")
    run(d, Timed())
    assert done.index("verifier") < done.index("solver")


def test_run_design_respects_max_in_flight():
    d = Design(("solver", "verifier", "generalist"), (M3, M3, M3), (), "a")
    client = FakeClient(latency_s=0.01)
    run(d, client, max_in_flight=2)
    assert client.peak_in_flight == 2


def test_repeated_proposer_model_gets_distinct_sample_indices():
    d = Design(("solver",), (Mixture(("a", "a", "b"), "a"),), (), "a")
    client = FakeClient()
    run(d, client)
    props = [r for r in client.requests if r.metadata["position"] == "proposer"]
    assert sorted(r.sample_index for r in props if r.model == "a") == [0, 1]


def test_run_many_returns_traces_in_job_order_within_the_bound():
    d = Design(("solver", "verifier"), (M3, M1), ((0, 1),), "a")
    qs = TASK.questions(12)
    client = FakeClient(latency_s=0.005)
    traces = asyncio.run(run_many([Job(d, q, TASK, RS) for q in qs], client, max_in_flight=4))
    assert [t.question_id for t in traces] == [q.id for q in qs]
    assert client.peak_in_flight == 4


def test_run_many_accepts_plain_coroutine_jobs():
    async def job(client):
        return Trace(task="letters", question_id="x", method="custom")

    traces = asyncio.run(run_many([job, job], FakeClient(), max_in_flight=1))
    assert [t.method for t in traces] == ["custom", "custom"]


def test_trace_json_round_trip():
    d = Design(("planner", "solver"), (M3, None), ((0, 1),), "a")
    trace = run(d, FakeClient())
    back = Trace.from_dict(__import__("json").loads(trace.to_json()))
    assert back == trace and back.cost_usd == trace.cost_usd


def test_unknown_role_in_design_is_rejected_before_any_call():
    from hieramas_gnn.errors import UserError

    d = Design(("solver", "bard"), (M1, M1), (), "a")
    client = FakeClient()
    with pytest.raises(UserError, match="unknown role 'bard'"):
        run(d, client)
    assert client.requests == []


def test_sample_index_spaces_every_call_of_the_episode():
    d = Design(("solver",), (Mixture(("a", "a"), "b"),), (), "a")
    client = FakeClient()
    run(d, client, sample_index=2)
    from hieramas_gnn.mas.supernode import MAX_REPEATS

    assert sorted(r.sample_index for r in client.requests) == [2 * MAX_REPEATS] * 3 + [2 * MAX_REPEATS + 1]


def test_decision_reading_all_takes_a_unanimous_answer_without_a_decision_call():
    d = Design(("solver", "verifier"), (Mixture(("a",), "a"), Mixture(("b",), "b")), ((0, 1),), "c",
               decision_inputs="all")
    client = FakeClient(reply=lambda r: "Answer: B")
    trace = run(d, client)
    assert [r.metadata["position"] for r in client.requests] == ["proposer", "proposer"]
    assert trace.answer == "B" and trace.correct is False and trace.n_calls == 2


def test_one_role_one_proposer_reading_all_is_exactly_the_single_model():
    """The very request of the `single:b` baseline: same prompt, same metadata, same cost."""
    from hieramas_gnn.mas.single import single_job

    d = Design(("solver", "verifier"), (None, Mixture(("b",), "b")), (), "c", decision_inputs="all")
    client = FakeClient(reply=lambda r: "Answer: A")
    trace = run(d, client)
    single = FakeClient(reply=lambda r: "Answer: A")
    baseline = asyncio.run(single_job(TASK, RS, Q, "b")(single))
    assert client.requests == single.requests
    assert trace.correct is True and trace.cost_usd == pytest.approx(baseline.cost_usd)
    assert [n.role for n in trace.nodes if n.text is not None] == ["verifier"]


def test_a_lone_single_model_answer_is_final_even_when_it_cannot_be_parsed():
    d = Design(("solver", "verifier"), (Mixture(("b",), "b"), None), (), "c", decision_inputs="all")
    client = FakeClient(reply=lambda r: "I am not sure.")
    trace = run(d, client)
    assert [r.metadata["position"] for r in client.requests] == ["single"]  # no decision call
    assert trace.answer is None and trace.correct is False and not trace.failed


def test_a_lone_role_reading_the_sinks_keeps_its_role_prompt_and_the_decision():
    d = Design(("solver", "verifier"), (None, Mixture(("b",), "b")), (), "c")
    client = FakeClient(reply=lambda r: "Answer: A")
    run(d, client)
    assert [(r.metadata["role"], r.metadata["position"]) for r in client.requests] == [
        ("verifier", "proposer"), ("decision", "decision")]


def test_a_lone_ungradable_role_keeps_its_own_prompt():
    d = Design(("planner", "solver"), (Mixture(("b",), "b"), None), (), "c", decision_inputs="all")
    client = FakeClient(reply=lambda r: "Answer: A")
    run(d, client)
    assert client.requests[0].metadata["role"] == "planner"


def test_decision_reading_all_escalates_a_disagreement_and_reads_every_active_role():
    d = Design(("planner", "solver", "verifier"), (M1, M1, M1), ((0, 1),), "c", decision_inputs="all")
    client = FakeClient(reply=lambda r: {"planner": "Answer: B", "solver": "Answer: C"}.get(
        r.metadata["role"], "Answer: A"))
    trace = run(d, client)
    decision = [r for r in client.requests if r.metadata["position"] == "decision"]
    assert len(decision) == 1 and decision[0].metadata["context_answers"] == ["B", "C", "A"]
    assert trace.answer == "A" and trace.correct is True


def test_decision_reading_the_sinks_still_calls_the_decision_on_agreement():
    d = Design(("solver", "verifier"), (M1, M1), (), "c")
    client = FakeClient()
    run(d, client)
    assert [r.metadata["position"] for r in client.requests].count("decision") == 1


# ---------------------------------------------------------------- the plurality synthesizer


def _by_model(answers):
    return lambda r: f"Answer: {answers[r.model]}"


def test_a_lone_plurality_role_is_the_vote_of_its_models_single_calls():
    """Same requests as the models' `single:<m>` calls, no synthesis and no decision call; the
    answer is the plurality (c and b disagree, so a is asked too and sides with b). When the
    vote settles early it makes fewer of them: tests/test_plurality_settle.py."""
    from hieramas_gnn.mas.design import PLURALITY
    from hieramas_gnn.mas.single import single_job

    d = Design(("solver", "verifier"), (Mixture(("a", "b", "c"), PLURALITY), None), (), "c", decision_inputs="all")
    reply = _by_model({"a": "A", "b": "A", "c": "B"})
    client = FakeClient(reply=reply)
    trace = run(d, client)
    singles = FakeClient(reply=reply)
    for m in ("b", "c", "a"):  # asked from the end: b and c first, then a
        asyncio.run(single_job(TASK, RS, Q, m)(singles))
    assert client.requests == singles.requests
    assert trace.answer == "A" and trace.correct is True and trace.n_calls == 3
    assert d.summary() == "plurality vote of 3 [a, b, c]"


def test_a_plurality_tie_goes_to_the_earliest_proposer():
    from hieramas_gnn.mas.design import PLURALITY

    d = Design(("solver",), (Mixture(("a", "b", "c", "d"), PLURALITY),), (), "c", decision_inputs="all")
    trace = run(d, FakeClient(reply=_by_model({"a": "B", "b": "A", "c": "A", "d": "B"})))
    assert trace.answer == "B"


def test_a_plurality_role_inside_a_design_makes_no_synthesis_call_and_feeds_the_vote_onwards():
    from hieramas_gnn.mas.design import PLURALITY

    d = Design(("solver", "verifier"), (Mixture(("a", "b", "c"), PLURALITY), Mixture(("d",), "d")), ((0, 1),), "c")
    client = FakeClient(reply=lambda r: {"a": "Answer: B", "b": "Answer: A", "c": "Answer: A"}.get(r.model, "Answer: A"))
    trace = run(d, client)
    positions = [(r.metadata["role"], r.metadata["position"]) for r in client.requests]
    # b and c agree: the vote is settled without asking a
    assert ("solver", "synthesizer") not in positions and positions.count(("solver", "proposer")) == 2
    verifier = next(r for r in client.requests if r.metadata["role"] == "verifier")
    assert verifier.metadata["context_answers"] == ["A"]  # the voted proposal is the solver's output
    assert trace.nodes[0].answer == "A" and trace.n_calls == d.total_calls() - 1 == 2 + 1 + 1
