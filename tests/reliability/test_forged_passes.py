"""HumanEval pass/fail comes from outputs the candidate cannot forge: a printed marker, exit 0, a
replaced AssertionError, an object equal to everything or a forged verdict file never pass."""

from __future__ import annotations

import pytest

from hieramas_gnn.tasks.humaneval import HumanEvalTask
from tests.reliability.hostile import FORGERIES, add_question


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    return HumanEvalTask(timeout_s=3)  # the correct solution grades in ~0.1 s; `huge_output_object` runs out the clock


def test_the_correct_solution_passes(task):
    q = add_question()
    assert task.grade(["def add(a, b):\n    return a + b\n"], [q]) == [True]


def test_a_plain_wrong_solution_fails(task):
    q = add_question()
    assert task.grade(["def add(a, b):\n    return a - b\n"], [q]) == [False]


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_pass_is_graded_wrong(task, name):
    assert task.grade([FORGERIES[name]], [add_question()]) == [False]


def test_helpers_from_the_prompt_and_reference_by_name_still_work(task):
    """Tests that call a prompt helper or the entry point by name (HumanEval/32, /33) grade right."""
    from hieramas_gnn.tasks.base import Question

    prompt = "def double(x):\n    return 2 * x\n\ndef quad(x):\n    \"\"\"4x.\"\"\"\n"
    test = "def check(candidate):\n    assert candidate(3) == double(double(3)) == quad(3)\n"
    q = Question(id="H/1", task="humaneval", text=prompt, gold="    return double(double(x))\n",
                 meta={"domain": "code", "entry_point": "quad", "prompt": prompt, "test": test, "split": "test"})
    assert task.grade(["    return 4 * x\n", "    return 3 * x\n"], [q, q]) == [True, False]
