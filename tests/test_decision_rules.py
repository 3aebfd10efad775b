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
