"""`experiments/warm_start_selection.py`: the selection rules and the MoA ceiling it reports."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from experiments.warm_start_selection import moa_ceiling, pick


def test_pick_takes_the_best_mean_reward_ties_to_the_cheaper():
    rewards = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=float)
    assert pick(rewards, [3.0, 1.0, 2.0], ["a", "b", "c"], rule_one_se=False) == 2
    tied = np.array([[1, 0], [0, 1]], dtype=float)
    assert pick(tied, [2.0, 1.0], ["a", "b"], rule_one_se=False) == 1


def test_one_se_takes_the_cheapest_design_within_a_paired_standard_error_of_the_best():
    best = np.zeros(400)
    best[:200] = 1.0
    close = best.copy()
    close[:3], close[200:202] = 0.0, 1.0  # loses 3 questions, wins 2: 1/400 below, within one SE
    far = np.zeros(400)  # 1/2 below
    rewards = np.stack([best, close, far])
    assert pick(rewards, [3.0, 2.0, 1.0], ["best", "close", "far"], rule_one_se=True) == 1
    assert pick(rewards, [3.0, 2.0, 1.0], ["best", "close", "far"], rule_one_se=False) == 0


@dataclass(frozen=True)
class _Design:
    name: str

    def summary(self) -> str:
        return self.name


def _design(name):
    return _Design(name)


def test_the_moa_ceiling_is_the_most_accurate_test_design_under_half_moas_cost(tmp_path):
    ids = ["q1", "q2", "q3", "q4"]
    (tmp_path / "per_query.json").write_text(json.dumps({
        "question_ids": ids[::-1],  # another order: aligned by id
        "methods": {"moa": {"correct": [1, 0, 1, 0], "cost": [1.0] * 4}}}))
    held = slice(2, None)  # two fit questions, then the four test questions
    cheap_good = _design("cheap good")
    outcomes = {cheap_good: (np.array([0, 0, 1, 1, 1, 1.0]), np.array([9, 9, 0.4, 0.4, 0.4, 0.4])),
                _design("dear perfect"): (np.ones(6), np.full(6, 0.6)),
                _design("cheap bad"): (np.zeros(6), np.full(6, 0.1))}
    c = moa_ceiling(str(tmp_path), outcomes, ids, held)
    assert (c["design"], c["accuracy"], c["moa_accuracy"], c["designs_under_half"]) == ("cheap good", 1.0, 0.5, 2)
    assert c["gap"] == pytest.approx(0.5)
    with pytest.raises(SystemExit, match="not this split's test questions"):
        moa_ceiling(str(tmp_path), outcomes, ["q1", "q2", "q3", "other"], held)
