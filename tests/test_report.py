"""Report: every file is written, the JSON has the baselines shape, the table and Pareto front are right."""

from __future__ import annotations

import json

from hieramas_gnn.eval import evaluate, report
from hieramas_gnn.mas.design import Design, Mixture

ROWS = [
    {"method": "hieramas", "accuracy": 0.8, "cost_usd": 0.002, "tokens": 900, "calls": 5, "latency_ms_p50": 800},
    {"method": "single:big", "accuracy": 0.7, "cost_usd": 0.004, "tokens": 400, "calls": 1, "latency_ms_p50": 500},
    {"method": "single:small", "accuracy": 0.5, "cost_usd": 0.0001, "tokens": 400, "calls": 1, "latency_ms_p50": 300},
    {"method": "moa", "accuracy": 0.82, "cost_usd": 0.02, "tokens": 5000, "calls": 10, "latency_ms_p50": 2000},
]
DESIGN = Design(("analyst", "solver"), (Mixture(("a", "b"), "a"), None), ((0, 1),), "a")


def test_write_report_writes_all_files(tmp_path):
    paths = report.write_report(tmp_path, ROWS, meta={"task": "synthetic", "pool": "sim"}, design=DESIGN)
    for name in ("report.md", "results.json", "pareto.png", "topology.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert set(paths) == {"report", "results", "pareto", "topology"}


def test_results_json_has_the_baselines_shape(tmp_path):
    report.write_report(tmp_path, ROWS, meta={"task": "synthetic", "backend": "sim", "n": 10})
    data = json.loads((tmp_path / "results.json").read_text())
    assert (data["task"], data["backend"], data["n"]) == ("synthetic", "sim", 10)
    assert [r["method"] for r in data["results"]] == [r["method"] for r in ROWS]
    assert all(set(evaluate.ROW_KEYS) <= set(r) for r in data["results"])


def test_pareto_front_excludes_dominated_methods():
    assert report.pareto_front(ROWS) == ["single:small", "hieramas", "moa"]


def test_table_shows_mean_and_std_over_seeds():
    rows = evaluate.aggregate_seeds([[dict(ROWS[0])], [dict(ROWS[0], accuracy=0.6)]])
    table = report.markdown_table(rows)
    assert "0.700 ± 0.141" in table and "**hieramas**" in table


def test_summarize_counts_failures_as_wrong():
    class T:
        def __init__(self, correct, failed=False):
            self.correct, self.failed = correct, failed
            self.cost_usd, self.tokens, self.latency_ms, self.calls = 0.01, 10, 5.0, [1, 2]

    row = evaluate.summarize("m", [T(True), T(None, failed=True)])
    assert row["accuracy"] == 0.5 and row["n_failed"] == 1 and row["calls"] == 2


def test_executor_runner_runs_designs_and_counts_rollouts():
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.mas.testing import FakeClient, LetterTask

    task, roleset = LetterTask(), get_roleset("mmlu")
    roles = roleset.names[:2]
    design = Design(roles, (Mixture(("m1", "m2"), "m1"), Mixture(("m1",), "m1")), ((0, 1),), "m1")
    runner = evaluate.ExecutorRunner(FakeClient(), task, roleset, max_in_flight=4)
    row = evaluate.evaluate_designs("fixed", [design] * 3, task.questions(3), runner)
    assert runner.rollouts == 3
    assert row["accuracy"] == 1.0 and row["calls"] == 5 and row["cost_usd"] > 0


def test_run_repeated_runs_each_pair_per_sample_index_and_restores_it():
    from types import SimpleNamespace

    class Runner:
        def __init__(self):
            self.sample_index, self.rollouts, self.seen = 5, 0, []

        def run(self, jobs):
            self.seen.append(self.sample_index)
            self.rollouts += len(jobs)
            return [SimpleNamespace(correct=(self.sample_index + i) % 2 == 0) for i, _ in enumerate(jobs)]

    runner = Runner()
    traces = evaluate.run_repeated(runner, ["d0", "d1", "d2"], ["q0", "q1", "q2"], runs=3)
    assert runner.seen == [0, 1, 2] and runner.sample_index == 5 and runner.rollouts == 9
    means = evaluate.per_query_mean([float(t.correct) for t in traces], 3)
    assert means == [2 / 3, 1 / 3, 2 / 3]  # query i right when (run + i) is even
    evaluate.run_repeated(runner, ["d0"], ["q0"], runs=1)
    assert runner.seen[-1] == 5  # one run: the runner's own index, untouched
