"""Every row of the hostile-input table (tests/reliability/hostile_inputs.py) holds: a clear error
with nothing of the user's changed, or the right behaviour; never data loss, a call or key the user
did not configure, a silently wrong number, a traceback or a hang."""

from __future__ import annotations

import pytest

from tests.reliability.hostile_inputs import CLASSES, ROWS, run_row


def test_the_table_covers_every_class_of_failure():
    assert {r.guards for r in ROWS} == set(CLASSES)
    assert len({r.name for r in ROWS}) == len(ROWS) >= 70


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_input_holds(row, tmp_path):
    verdict = run_row(row, tmp_path)
    assert verdict.outcome == "held", f"{verdict.outcome}: {verdict.detail}"
