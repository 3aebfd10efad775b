"""Result rows of a mixed task: `by_component` and `accuracy_task_mean` in every row, over seeds,
in the tables and in `hieramas report`'s paired tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hieramas_gnn.eval.evaluate import aggregate_seeds
from hieramas_gnn.eval.frontier import load_experiment, task_mean_weights
from hieramas_gnn.eval.report import markdown_table
from hieramas_gnn.mas.runner import component_accuracy, summarize
from hieramas_gnn.mas.trace import Trace


def _traces(spec: list[tuple[str, bool]]) -> list[Trace]:
    return [Trace(task="mix", question_id=f"q{i}", component=c, correct=ok) for i, (c, ok) in enumerate(spec)]


def test_the_task_mean_weighs_every_component_alike():
    got = component_accuracy(["a", "a", "a", "b"], [1, 1, 0, 0])
    assert got == {"by_component": {"a": pytest.approx(2 / 3), "b": 0.0}, "accuracy_task_mean": pytest.approx(1 / 3)}
    assert component_accuracy([None, None], [1, 0]) == {}


def test_a_row_of_a_mixed_task_carries_its_components():
    row = summarize("m", _traces([("a", True), ("a", False), ("b", True)]))
    assert row["accuracy"] == pytest.approx(2 / 3)
    assert row["by_component"] == {"a": 0.5, "b": 1.0} and row["accuracy_task_mean"] == 0.75
    failed = _traces([("a", True), ("b", True)])
    failed[1].fail("boom")
    assert summarize("m", failed)["by_component"]["b"] == 0.0  # a failed episode counts as wrong
    assert "by_component" not in summarize("m", [Trace(task="t", question_id="q", correct=True)])


def test_seeds_average_the_task_mean_and_each_component():
    rows = [[summarize("m", _traces([("a", True), ("b", False)]))],
            [summarize("m", _traces([("a", True), ("b", True)]))]]
    agg = aggregate_seeds(rows)[0]
    assert agg["accuracy_task_mean"] == 0.75 and agg["accuracy_task_mean_std"] > 0
    assert agg["by_component"] == {"a": 1.0, "b": 0.5}


def test_the_table_shows_the_task_mean_and_each_component():
    rows = [summarize("m1", _traces([("a", True), ("b", False)])),
            summarize("m2", _traces([("a", True), ("b", True)]))]
    table = markdown_table(rows)
    assert "accuracy (mean over tasks)" in table.splitlines()[0] and "| a |" in table.splitlines()[0] + " "
    assert table.splitlines()[2].startswith("| m2 | 1.000")


def test_weights_make_a_weighted_mean_the_mean_over_components():
    comps = ["a"] * 30 + ["b"] * 5 + ["c"] * 65
    x = np.random.default_rng(0).random(100)
    want = np.mean([x[:30].mean(), x[30:35].mean(), x[35:].mean()])
    assert float(np.mean(task_mean_weights(comps) * x)) == pytest.approx(want)


def test_the_report_judges_a_mixed_task_on_the_task_mean(tmp_path):
    comps = ["a"] * 8 + ["b"] * 2
    rows = [{"method": "hieramas", "accuracy": 0.8, "accuracy_task_mean": 0.75, "by_component": {"a": 1.0, "b": 0.5},
             "cost_usd": 1.0, "seeds": 1},
            {"method": "best_single", "accuracy": 0.2, "accuracy_task_mean": 0.5, "by_component": {"a": 0.0, "b": 1.0},
             "cost_usd": 2.0}]
    (tmp_path / "results.json").write_text(json.dumps({"task": "mix", "pool": "p", "n": 10, "results": rows}))
    pq = {"hieramas": {"correct": [1] * 8 + [1, 0]}, "best_single": {"correct": [0] * 8 + [1, 1]}}
    (tmp_path / "per_query.json").write_text(json.dumps({"question_ids": [f"q{i}" for i in range(10)],
                                                         "methods": pq, "components": comps}))
    e = load_experiment(tmp_path)
    assert float(np.mean(e.per_query["hieramas"]["correct"])) == pytest.approx(0.75)
    from hieramas_gnn.eval.frontier import baseline_points, learned_points

    assert learned_points([e])[0].accuracy == 0.75 and baseline_points([e])[0].by_component == {"a": 0.0, "b": 1.0}


def test_the_demo_claims_judge_a_mixed_task_on_the_task_mean():
    from hieramas_gnn.eval.experiment import claims

    comps = ["a"] * 8 + ["b"] * 2
    rows = [{"method": "hieramas", "accuracy": 0.8, "accuracy_task_mean": 0.75, "cost_usd": 1.0},
            {"method": "best_per_task", "accuracy": 0.2, "accuracy_task_mean": 0.5, "cost_usd": 1.0}]
    pq = {"hieramas": {"correct": np.array([1.0] * 8 + [1, 0])}, "best_per_task": {"correct": np.array([0.0] * 8 + [1, 1])}}
    line = next(c for c in claims(rows, 10, pq, comps) if "best_per_task" in c)
    assert "acc 0.500" in line and "+0.250" in line
