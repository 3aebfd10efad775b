"""MATH answer extraction and equivalence, on real answer strings.

The pairs below are real: the left side is a model's final answer taken from
`outcomes/raw/math_l5_zeroeval_outputs.jsonl.gz` (extracted with this project's extractor) or a
MATH-500 gold answer (`benchmarks/math500_test.jsonl`), the right side the gold answer of that
question; a few use a gold answer written the way models commonly write it. Hand-labelled.
They are committed here as data; the shared files are not needed for these tests.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.tasks import Question, get_task
from hieramas_gnn.tasks.math import extract_math_answer
from hieramas_gnn.tasks.math_equiv import math_equal, run_with_timeout, strip_latex

EQUAL_PAIRS = [
    # model answer (math_l5 raw outputs) vs gold
    (r"\frac{9}{1}", "9"), ("20%", "20"), ("54,000", "54000"), ("102/17", "6"), ("17,700", "17700"),
    ("10,455", "10455"), ("60 cents", "60"), ("10 meters", "10"), ("10 * 2^9", "5120"), ("3-4+24", "23"),
    ("1152 cups", "1152"), ("7^4 * 4", "9604"), ("11+9+0", "20"), ("x = -4", "-4"), ("47 feet", "47"),
    ("1,680", "1680"), ("10.0", "10"), ("sqrt(25)", "5"), (r"\frac{a-1}{1-a}", "-1"), ("7^{6}", "117649"),
    ("100100_b", "100100"), ("1112112", "1112112_3"),
    # MATH-500 gold answers vs the same value as models write it
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"), (r"\dfrac{14}{3}", r"\frac{14}{3}"),
    ("14/3", r"\frac{14}{3}"), (r"137 \frac{1}{2}", r"\frac{275}{2}"), (r"145^\circ", "145"),
    (r"3 \sqrt{5}", r"3\sqrt{5}"), ("6√2", r"6\sqrt{2}"), (r"4210_{5}", "4210_5"), (r"\text{(C)}", "C"),
    ("3, 5, 7", "7, 5, 3"), (r"-\frac{24}{25}", "-0.96"), (r"\frac{1}{2}", "0.5"), ("4.5", r"\frac{9}{2}"),
    ("y = -2x", "-2x"), (r"\frac{11+9a}{20}", r"\frac{9a+11}{20}"), ("6r^2-4r-24", "2(3r^2-2r-12)"),
    ("8n^2 + 4n + 1", "1+4n+8n^2"), (r"\sqrt{51}", r"\sqrt{51}"), (r"(2,12) \cup (12,102)", r"(2, 12) \cup (12, 102)"),
    (r"\$32.50", "32.5"), (r"10\%", "10"), (r"\left(\frac{3}{5},\frac{8}{3}\right]", r"(\frac{3}{5}, \frac{8}{3}]"),
    (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}"), (r"2\pi", r"\pi \cdot 2"),
]

UNEQUAL_PAIRS = [
    # model answer (math_l5 raw outputs) vs gold
    ("0.375", "3"), ("-7k", "-7"), ("16", "65536"), (r"2^(5/4) * √1058", "46"), ("49/4", "49"),
    ("11/5", "11"), ("45/2", "45"), ("1/2", "1"), ("-1/3", "-1"), ("32/3", "32"), ("2,-1", "2"),
    ("1,-1", "1"), ("10879, -10879", "10879"), ("-1 + i", "-1"), (r"3\sqrt{5}", "3"),
    (r"\frac{3\sqrt{6}}{5\sqrt{5}}", "3"), ("5/sqrt(2)", "5"), ("175 + 100sqrt(3)", "175"),
    ("-6 - 2a - 2b", "-6"), ("6√2", "6"), ("2 + 3 = 5", "2"), ("18", "27"), ("20.5", "62"),
    # MATH-500 gold answers vs near misses
    (r"\left( 3, \frac{\pi}{2} \right)", r"\left[ 3, \frac{\pi}{2} \right]"), (r"\frac{14}{3}", r"\frac{3}{14}"),
    (r"\sqrt{51}", "51"), ("1+274i", "1-274i"), ("3, 5, 7", "3, 5"), (r"-\frac{24}{25}", r"\frac{24}{25}"),
]


@pytest.mark.parametrize("answer,gold", EQUAL_PAIRS)
def test_equal_answers_are_equivalent(answer, gold):
    assert math_equal(answer, gold)


@pytest.mark.parametrize("answer,gold", UNEQUAL_PAIRS)
def test_unequal_answers_are_not_equivalent(answer, gold):
    assert not math_equal(answer, gold)


def test_there_are_at_least_40_real_pairs():
    assert len(EQUAL_PAIRS) + len(UNEQUAL_PAIRS) >= 40


@pytest.mark.parametrize("reply,expected", [
    (r"So the area is $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"first \boxed{3} then corrected: \boxed{4}", "4"),
    ('{"reasoning": "...", "answer": "\\\\frac{3}{4}"}', r"\frac{3}{4}"),
    ('{"reasoning": "...", "answer": "The value is \\\\boxed{12}"}', "12"),
    ("Final Answer: The final answer is $7$. I hope it is correct.", "7"),
    ("The answer is 42.", "42"),
    ("I could not solve it.", None),
])
def test_math_extracts_the_final_answer(reply, expected):
    assert extract_math_answer(reply) == expected


def test_normalisation_drops_left_right_text_and_spaces():
    assert strip_latex(r"\left( 3, \text{ } \frac{\pi}{2} \right)") == r"(3,\frac{\pi}{2})"


def test_huge_power_is_refused_quickly_not_computed():
    start = time.perf_counter()
    assert not math_equal("2^{2^{2^{2^{10}}}}", "3")
    assert time.perf_counter() - start < 2


def test_timeout_returns_none_on_main_thread():
    assert run_with_timeout(lambda: time.sleep(5), 0.2) is None


def test_timeout_returns_none_off_main_thread():
    box = []
    worker = threading.Thread(target=lambda: box.append(run_with_timeout(lambda: time.sleep(3), 0.2)))
    start = time.perf_counter()
    worker.start()
    worker.join()
    assert box == [None] and time.perf_counter() - start < 2


@settings(max_examples=40, deadline=None)
@given(num=st.integers(-999, 999), den=st.integers(1, 99))
def test_math_render_round_trips(num, den):
    task = get_task("math500")
    answer = rf"\frac{{{num}}}{{{den}}}"
    q = Question(id="math500/x", task="math500", text="?", gold=answer, meta={"domain": "algebra"})
    reply = task.render_answer(answer, q)
    assert task.extract(reply, q) == answer and task.score(reply, q).correct


def test_math500_loads_with_subject_and_level(shared_data):
    qs = get_task("math500").load()
    assert len(qs) == 500 and all(q.meta["domain"] and 1 <= q.meta["difficulty"] <= 5 for q in qs)


def test_math500_gold_scores_correct_through_render(shared_data):
    task = get_task("math500")
    assert all(task.score(task.render_answer(q.gold, q), q).correct for q in task.load())


def test_math_l5_questions_load_by_id(shared_data):
    task = get_task("math_l5")
    q = task.get("math_l5/0")
    assert q.gold == "-15" and q.meta["difficulty"] == 5


def test_a_symbolic_comparison_is_made_once_per_answer_pair(monkeypatch):
    """Grading compares the same answer pairs again and again (each design of a search re-grades
    the same replies): sympy runs once per pair; the same pair gives the same verdict."""
    from hieramas_gnn.tasks import math_equiv

    math_equiv._sympy_equal.cache_clear()
    calls = []
    real = math_equiv.latex_to_sympy_text
    monkeypatch.setattr(math_equiv, "latex_to_sympy_text", lambda t: calls.append(t) or real(t))
    first = [math_equal(r"\frac{2}{4} x", "x/2") for _ in range(3)]
    assert first == [True] * 3 and len(calls) == 2  # one conversion of each side, once
    assert math_equal("x/2", r"\frac{2}{4} x") and len(calls) == 4  # the other order is its own pair
    assert not math_equal("x/3", "x/2")
