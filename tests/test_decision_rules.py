"""The executor's decision rules: with `decision_inputs: all`, only a unanimous *parsed* answer
skips the decision call; unparsed or split answers go to the decision model."""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import run_design, unanimous
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask

RS = get_roleset("synthetic")
TASK = LetterTask()
Q = TASK.questions(1)[0]
ALL = Design(("solver", "verifier"), (Mixture(("a",), "a"), Mixture(("b",), "b")), (), "c", decision_inputs="all")


@pytest.mark.parametrize("answers, expected", [
    (["B", "B"], True),
    (["B"], True),
    (["B", "C"], False),
    (["B", None], False),
    ([None, "B"], False),
    ([None, None], False),
    ([None], False),
    ([], False),
])
def test_unanimous_means_at_least_one_answer_all_parsed_and_equal(answers, expected):
    assert unanimous(answers) is expected


def _positions(reply):
    client = FakeClient(reply=reply)
    trace = asyncio.run(run_design(ALL, Q, TASK, client, RS))
    return [r.metadata["position"] for r in client.requests], trace


def test_all_unparsed_answers_go_to_the_decision_model():
    positions, trace = _positions(lambda r: "Answer: A" if r.metadata["position"] == "decision" else "no idea")
    assert positions == ["proposer", "proposer", "decision"]
    assert trace.answer == "A" and trace.correct is True


def test_split_answers_go_to_the_decision_model():
    positions, trace = _positions(lambda r: {"a": "Answer: B", "b": "Answer: C", "c": "Answer: A"}[r.model])
    assert positions == ["proposer", "proposer", "decision"] and trace.answer == "A"


def test_a_unanimous_parsed_answer_skips_the_decision_call():
    positions, trace = _positions(lambda r: "Answer: A" if r.metadata["position"] == "proposer" else "Answer: B")
    assert positions == ["proposer", "proposer"] and trace.answer == "A" and trace.correct is True


def test_the_decision_prompt_holds_the_question_each_role_s_text_and_the_instruction():
    from hieramas_gnn.mas.supernode import quote

    texts = {"a": "I think Answer: B", "b": "", "c": "Answer: A"}  # b's reply is empty
    client = FakeClient(reply=lambda r: texts[r.model])
    asyncio.run(run_design(ALL, Q, TASK, client, RS))
    decision = [r for r in client.requests if r.metadata["position"] == "decision"][0]
    expected = RS.render("decision_user", question=Q.text, context=quote([("solver", texts["a"]), ("verifier", "")]),
                         instruction=TASK.instruction())
    assert decision.messages[-1]["content"] == expected
    assert decision.metadata["context_answers"] == ["B", None]


def test_a_lone_empty_answer_is_graded_as_the_empty_text(monkeypatch):
    graded = []
    real = TASK.score
    monkeypatch.setattr(TASK, "score", lambda text, q: graded.append(text) or real(text, q))
    lone = Design(("solver", "verifier"), (Mixture(("b",), "b"), None), (), "c", decision_inputs="all")
    trace = asyncio.run(run_design(lone, Q, TASK, FakeClient(reply=lambda r: ""), RS))
    assert graded and set(graded) == {""} and trace.answer is None and trace.correct is False


def test_latency_is_the_critical_path_through_the_decision_call():
    client = FakeClient(reply=lambda r: {"a": "Answer: B", "b": "Answer: C", "c": "Answer: A"}[r.model],
                        latency_s=0.002)
    trace = asyncio.run(run_design(ALL, Q, TASK, client, RS))
    assert trace.latency_ms == pytest.approx(4.0)  # the proposers in parallel (2 ms), then the decision


def test_with_every_role_skipped_the_latency_is_the_decision_call_alone():
    bare = Design(("solver", "verifier"), (None, None), (), "c")
    client = FakeClient(reply=lambda r: "Answer: A", latency_s=0.002)
    trace = asyncio.run(run_design(bare, Q, TASK, client, RS))
    assert [r.metadata["position"] for r in client.requests] == ["decision"]
    assert trace.latency_ms == pytest.approx(2.0) and trace.correct is True
