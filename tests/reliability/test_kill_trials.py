"""SIGKILL at random points of `collect` (>= 20 trials, heavy): nothing re-paid, identical cache.
(The default suite keeps the single-kill test of tests/test_llm_collect.py.)"""

from __future__ import annotations

import pytest

from tests.reliability.kill import kill_trial, reference


@pytest.mark.heavy
def test_twenty_random_kills_repay_nothing_and_end_identical(tmp_path):
    expected = reference(tmp_path / "reference")
    trials = [kill_trial(tmp_path / f"trial{i}", seed=i, expected=expected) for i in range(20)]
    assert all(t["killed"] for t in trials)
    assert [t["repaid"] for t in trials] == [0] * 20
    assert all(t["identical"] for t in trials)
