"""SIGKILL at random points of `collect` and `train`: nothing re-paid, identical final state.

Heavy: >= 20 trials each (train trials spread over stage 1, stage 2 and export). The default
suite keeps one train kill (during stage 2, after its rollouts are paid for; the reference and
the resumed run in-process to save two interpreter starts) and the single-kill collect test of
tests/test_llm_collect.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability import kill_train
from tests.reliability.kill import kill_trial, reference


@pytest.mark.heavy
def test_twenty_random_kills_repay_nothing_and_end_identical(tmp_path):
    expected = reference(tmp_path / "reference")
    trials = [kill_trial(tmp_path / f"trial{i}", seed=i, expected=expected) for i in range(20)]
    assert all(t["killed"] for t in trials)
    assert [t["repaid"] for t in trials] == [0] * 20
    assert all(t["identical"] for t in trials)


def test_a_train_killed_in_stage_2_resumes_to_the_identical_bundle_metrics_and_cache(tmp_path):
    with ThreadPoolExecutor(1) as pool:  # the run to kill (a subprocess) beside the reference
        killed = pool.submit(kill_train.kill, tmp_path / "killed", "epochs", 1)
        ref = kill_train.reference(tmp_path / "reference", in_process=True)
        killed = killed.result()
    trial = kill_train.resume(tmp_path / "killed", killed, ref, in_process=True)
    assert trial["killed"] and not trial["bundle_complete_at_kill"]
    assert trial["killed_at_records"] == ref["records"]  # stage 2 had paid for all its rollouts
    assert trial["repaid"] == 0
    assert trial["differ"] == []


@pytest.mark.heavy
def test_twenty_one_train_kills_over_all_phases_repay_nothing_and_end_identical(tmp_path):
    ref = kill_train.reference(tmp_path / "reference")
    trials = [kill_train.kill_trial(tmp_path / f"trial{i}", seed=i, ref=ref) for i in range(21)]
    assert {t["phase"] for t in trials} == set(kill_train.PHASES)
    assert all(t["killed"] for t in trials)
    assert [t["repaid"] for t in trials] == [0] * 21
    assert [t["differ"] for t in trials] == [[]] * 21
