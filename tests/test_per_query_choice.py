"""`experiments/per_query_choice.py`: the hull, the query-blind coin flip and the router comparison."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from experiments.per_query_choice import against_routers, coin_flip, hull


def test_the_hull_keeps_the_upper_left_concave_frontier_by_cost():
    costs = np.array([1.0, 2.0, 3.0, 4.0, 2.5, 5.0])
    accs = np.array([0.5, 0.6, 0.8, 0.7, 0.65, 0.85])
    # 3 (dearer, less accurate than 2) is dominated; 1 and 4 lie below the segment 0 -> 2
    assert hull(costs, accs) == [0, 2, 5]
    assert hull(np.array([1.0]), np.array([0.3])) == [0]


def test_the_coin_flip_mixes_the_two_hull_designs_around_the_budget_at_their_test_costs():
    fit_c, fit_a = np.array([1.0, 3.0, 2.0]), np.array([0.4, 0.8, 0.5])  # design 2 is under the hull
    test_ok = np.array([[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=float)
    test_c = np.array([1.0, 3.0, 1.5])
    mix, cost, (lo, hi, share) = coin_flip(fit_c, fit_a, test_ok, test_c, budget=2.5)
    assert (lo, hi) == (0, 1) and share == pytest.approx(0.75)
    assert cost == pytest.approx(2.5)
    np.testing.assert_allclose(mix, [1.0, 0.75, 0.75, 0.0])  # per question: 1/4 of design 0, 3/4 of design 1
    # outside the hull's cost range: its cheapest (dearest) design alone
    assert coin_flip(fit_c, fit_a, test_ok, test_c, budget=0.5)[2] == (0, 0, 0.0)
    low, _, pick = coin_flip(fit_c, fit_a, test_ok, test_c, budget=9.0)
    assert pick == (1, 1, 0.0) and low.tolist() == [1, 1, 1, 0]


class _D:
    def __init__(self, name):
        self.name = name

    def summary(self):
        return self.name


def test_routers_are_compared_with_the_coin_flip_at_their_own_cost_aligned_by_question(tmp_path):
    ids = ["f1", "f2", "t1", "t2", "t3", "t4"]
    cheap, dear = _D("cheap"), _D("dear")
    run = SimpleNamespace(
        test=[SimpleNamespace(id=q) for q in ids[2:]], fit={"train_val": slice(0, 2)}, held=slice(2, None),
        outcomes={cheap: (np.array([0, 1, 0, 0, 1, 0.0]), np.full(6, 1.0)),
                  dear: (np.array([1, 1, 1, 1, 1, 0.0]), np.full(6, 3.0))})
    folder = tmp_path / "point"
    folder.mkdir()
    (folder / "per_query.json").write_text(json.dumps({
        "question_ids": ["t4", "t3", "t2", "t1"],  # another order: aligned by id
        "methods": {"router": {"correct": [1, 0, 0, 0], "cost": [2.0] * 4}}}))
    [r] = against_routers(run, [str(folder)])
    # coin flip at cost 2: half cheap, half dear -> per question [0.5, 0.5, 1.0, 0.0], mean 0.5
    assert r["coin_flip_accuracy"] == pytest.approx(0.5) and r["coin_flip_cost_usd"] == pytest.approx(2.0)
    assert r["router_accuracy"] == pytest.approx(0.25)  # t4 is right (it comes first in the file)
    assert r["router_minus_coin_flip"] == pytest.approx(-0.25)
    (folder / "per_query.json").write_text(json.dumps({"question_ids": ["t1", "t2", "t3", "x"], "methods": {}}))
    with pytest.raises(SystemExit, match="not this split's test questions"):
        against_routers(run, [str(folder)])
