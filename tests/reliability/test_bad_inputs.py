"""Every bad input of the table (tests/reliability/bad_inputs.py, >= 200 cases across score,
cache, eval, collect, baselines) gets a clear error: exit code 2, one message, no traceback, and
nothing written. Config cases (train, run) are the lead's: listed, run only with -m heavy."""

from __future__ import annotations

import pytest

from tests.reliability.bad_inputs import all_cases, run_case

CASES = all_cases()
FAST = [c for c in CASES if not c.subprocess]


def test_the_table_has_at_least_200_bad_inputs():
    assert len(CASES) >= 200 and len(FAST) >= 200


@pytest.mark.parametrize("case", FAST, ids=[c.id for c in FAST])
def test_bad_input_gives_a_clear_error_and_writes_nothing(case, tmp_path):
    outcome = run_case(case, tmp_path)
    assert outcome.kind == "clear", f"{outcome.kind} (exit {outcome.code}): {outcome.message}"
    assert outcome.message.startswith("hieramas") and "error" in outcome.message


@pytest.mark.heavy
@pytest.mark.parametrize("case", [c for c in CASES if c.subprocess], ids=[c.id for c in CASES if c.subprocess])
def test_config_bad_input_gives_a_clear_error(case, tmp_path):
    outcome = run_case(case, tmp_path)
    assert outcome.kind == "clear", f"{outcome.kind} (exit {outcome.code}): {outcome.message}"
