"""The number an answer states (`tasks/answers.number_from_answer`): after the *last* `=`."""

from __future__ import annotations

import pytest

from hieramas_gnn.tasks.answers import number_from_answer


@pytest.mark.parametrize("answer, number", [
    ("x = 2 + 3 = 5", "5"),
    ("2 + 3 = 5", "5"),
    ("total = $1,200.50", "1200.5"),
    ("= 7", "7"),
    ("42 apples", "42"),
    ("-3", "-3"),
    ("the answer is 12 = twelve", "12"),  # nothing numeric after the last '=': the first number
    ("no number here", None),
    ("", None),
])
def test_number_from_answer_reads_after_the_last_equals_sign(answer, number):
    assert number_from_answer(answer) == number
