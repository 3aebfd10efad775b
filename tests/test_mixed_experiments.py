"""The mixed-benchmark experiments' pure parts: recorded figures (`experiments/mixed_peers.py`) and
the ceiling's budget and per-task choices (`experiments/mixed_ceiling.py`), and the task-mean
weighting of `experiments/pair_runs.py`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from experiments.mixed_ceiling import best_under, per_component, per_task_combos
from experiments.mixed_peers import recorded_figures, se_task_mean
from experiments.pair_runs import pair
from tests.conftest import require_shared


def test_the_best_design_under_a_budget_is_the_most_accurate_then_the_cheapest():
    acc, cost = np.array([0.9, 0.8, 0.8, 0.95]), np.array([4.0, 1.0, 0.5, 9.0])
    assert best_under(acc, cost, 5.0) == 0 and best_under(acc, cost, 1.0) == 2 and best_under(acc, cost, 0.1) is None


def test_per_task_combinations_mix_one_design_per_component():
    acc_k = np.array([[1.0, 0.0], [0.0, 1.0]])  # design 0 solves component 0, design 1 component 1
    cost_k = np.array([[1.0, 1.0], [3.0, 3.0]])
    combos, acc, cost = per_task_combos(acc_k, cost_k, np.array([0.5, 0.5]), [0, 1])
    best = int(np.argmax(acc))
    assert combos[best].tolist() == [0, 1] and acc[best] == 1.0 and cost[best] == 2.0
    assert per_component(np.array([[1.0, 0.0, 1.0]]), np.array(["a", "a", "b"]), ["a", "b"]).tolist() == [[0.5, 1.0]]


def test_recorded_figures_average_over_tasks():
    pool = SimpleNamespace(names=["m1", "m2"])
    # test: task a (2 questions) m1 better; task b (1 question) m2 better
    s_te = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    fit = (s_te, None, ["a", "a", "b"])
    test = (s_te, None, ["a", "a", "b"])
    got = recorded_figures(pool, fit, test, [], [])
    assert got["best_single_on_test"] == {"model": "m2", "task_mean": 0.625}  # (0.25 + 1) / 2 beats (1 + 0) / 2
    assert got["best_per_task_on_test"]["task_mean"] == 1.0 and got["oracle"]["task_mean"] == 1.0
    assert se_task_mean(np.array([1.0, 1.0, 0.0]), ["a", "a", "b"]) > 0


def test_recorded_figures_reproduce_the_published_routerdc_numbers():
    require_shared("outcomes/routerdc_7models.csv.gz")
    from experiments.mixed_peers import expected_matrix
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.tasks import get_task

    task, pool = get_task("routerdc"), load_pool("replay-routerdc-7")
    test = task.load(split="test")
    m = expected_matrix(task, pool, test)
    got = recorded_figures(pool, m, m, test, test)
    assert got["best_single_on_test"] == {"model": "dolphin-2.9-llama3-8b", "task_mean": pytest.approx(0.570, abs=5e-4)}
    assert got["best_per_task_on_test"]["task_mean"] == pytest.approx(0.604, abs=5e-4)
    assert got["oracle"]["task_mean"] == pytest.approx(0.770, abs=5e-4)


def test_pairing_with_task_mean_weights_judges_the_mean_over_components():
    from hieramas_gnn.stats import task_mean_weights

    # component a (3 questions): both right; component b (1 question): only the first right
    a = {"correct": [1.0, 1.0, 1.0, 1.0], "cost": [1.0] * 4}
    b = {"correct": [1.0, 1.0, 1.0, 0.0], "cost": [2.0] * 4}
    w = task_mean_weights(["a", "a", "a", "b"])
    every = pair(a, b, np.arange(4), w)
    assert every["accuracy"] == 1.0 and every["other_accuracy"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert every["gap"] == pytest.approx(0.5) and pair(a, b, np.arange(4))["gap"] == pytest.approx(0.25)
    only_b = pair(a, b, np.array([3]), w)  # within one component every weight is the same: no rescaling
    assert only_b["gap"] == 1.0 and only_b["cost_usd"] == 1.0
