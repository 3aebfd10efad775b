"""The plurality synthesizer asks until the vote is settled: the full vote's answer, from fewer calls.

Checked exhaustively on small votes (every answer pattern over {A, B, C, unparsed}): the answer
equals the plurality of all k answers, the rule stops exactly when no answers of the unasked
proposers could change the winner, and the proposers asked are a suffix of the list. Then the
cascade it contains, and the executor's calls and latency.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
from hieramas_gnn.mas.executor import run_design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.supernode import ask_until_settled, more_to_ask, plurality, voted
from hieramas_gnn.mas.testing import FakeClient, LetterTask

ALPHABET = ("A", "B", "C", None)


@dataclass
class Rec:
    text: str | None
    latency_ms: float = 10.0


def settle(answers: list[str | None]) -> tuple[list[int], str | None, float]:
    """Run the vote on scripted answers: (indices asked, in call order; voted answer; latency)."""
    asked: list[int] = []

    async def ask(j: int) -> Rec:
        asked.append(j)
        return Rec(answers[j])

    records, got, latency = asyncio.run(ask_until_settled(ask, len(answers), lambda t: t))
    assert [None if r is None else r.text for r in records] == got  # answers aligned with records
    return asked, plurality(got), latency


def winners(answers: list[str | None], unasked: int) -> set[str | None]:
    """Every winner the full vote could have, over all answers of the first `unasked` proposers."""
    return {plurality(list(fill) + answers[unasked:])
            for fill in itertools.product(ALPHABET, repeat=unasked)}


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_the_answer_is_the_full_votes_and_the_rule_stops_exactly_when_settled(k):
    for answers in itertools.product(ALPHABET, repeat=k):
        answers = list(answers)
        asked, answer, _ = settle(answers)
        assert answer == plurality(answers), answers
        assert sorted(asked) == list(range(k - len(asked), k)), answers  # a suffix, asked from the end
        # exact: settled (0 more) iff every completion of the unasked proposers keeps the winner
        for n in range(k + 1):
            seen = answers[k - n:]
            assert (more_to_ask(seen, k) == 0) == (len(winners(answers, k - n)) == 1), (answers, n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=9))
def test_larger_votes_keep_the_full_votes_answer(answers):
    asked, answer, _ = settle(answers)
    assert answer == plurality(answers)
    assert len(asked) <= len(answers)


def test_a_unanimous_vote_asks_only_a_majority():
    for k in range(1, 10):
        asked, _, latency = settle(["A"] * k)
        assert len(asked) == k // 2 + 1
        assert latency == 10.0  # one round


def test_the_plurality_of_strong_then_two_cheap_is_the_cascade():
    """[strong, cheap1, cheap2]: the cheap two are asked first; when they agree that is the answer
    and the strong model is never asked; otherwise it is asked and its answer wins (it agrees with
    one of them, or all three differ and the tie goes to it)."""
    for strong, c1, c2 in itertools.product("ABC", repeat=3):
        asked, answer, latency = settle([strong, c1, c2])
        if c1 == c2:
            assert (sorted(asked), answer, latency) == ([1, 2], c1, 10.0)
        else:
            assert (sorted(asked), answer, latency) == ([0, 1, 2], strong, 20.0)


RS = get_roleset("synthetic")
TASK = LetterTask()
Q = TASK.questions(1)[0]


def _run(design, client):
    return asyncio.run(run_design(design, Q, TASK, client, RS))


def test_a_lone_vote_makes_a_subset_of_the_vote_baselines_calls_and_gets_its_answer():
    from hieramas_gnn.mas.single import single_job

    replies = {"a": "B", "b": "A", "c": "A", "d": "C", "e": "A"}
    reply = lambda r: f"Answer: {replies[r.model]}"  # noqa: E731
    d = Design(("solver",), (Mixture(tuple(replies), PLURALITY),), (), "a", decision_inputs="all")
    client = FakeClient(reply=reply, latency_s=0.001)
    trace = _run(d, client)
    singles = FakeClient(reply=reply)
    for m in replies:
        asyncio.run(single_job(TASK, RS, Q, m)(singles))
    assert all(r in singles.requests for r in client.requests)
    # asked from the end: c, d, e first (A, C, A), then b (A): A leads 3 to 1 with one unasked
    assert [r.model for r in client.requests][-1] == "b" and sorted(r.model for r in client.requests) == list("bcde")
    assert trace.answer == "A" == plurality(list(replies.values())) and trace.n_calls == 4
    assert trace.nodes[0].proposals[0] is None and trace.nodes[0].proposal_answers == [None, "A", "A", "C", "A"]
    assert trace.latency_ms == pytest.approx(2.0)  # two rounds of 1 ms


def test_the_voted_text_is_the_first_asked_proposal_with_the_winning_answer():
    texts = ["x Answer: B", "y Answer: A", "z Answer: A"]
    assert voted(texts[1:], ["A", "A"]) == "y Answer: A"
    d = Design(("solver",), (Mixture(("a", "b", "c"), PLURALITY),), (), "a", decision_inputs="all")
    trace = _run(d, FakeClient(reply=lambda r: texts["abc".index(r.model)]))
    assert trace.nodes[0].text == "y Answer: A" and trace.n_calls == 2


def test_hieramas_run_says_which_proposers_a_settled_vote_asked():
    from hieramas_gnn.commands.run import format_trace

    d = Design(("solver",), (Mixture(("a", "b", "c"), PLURALITY),), (), "a", decision_inputs="all")
    settled = format_trace(d, _run(d, FakeClient(reply=lambda r: "Answer: A")))
    assert "(asked ['b', 'c']: settled without the rest)" in settled
    full = format_trace(d, _run(d, FakeClient(reply=lambda r: f"Answer: {'ABC'['abc'.index(r.model)]}")))
    assert "asked" not in full  # all three asked: nothing to say
