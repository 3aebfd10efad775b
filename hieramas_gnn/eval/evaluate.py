"""Evaluation: run designs on held-out queries and summarise them as `hieramas baselines` rows.

The runner and the row format live in `mas/runner.py` (re-exported here); this module adds the
evaluation helpers on top (`evaluate_designs`, `evaluate_rule`, `aggregate_seeds`).
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Sequence

from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.runner import (  # noqa: F401  (re-exported: the evaluation API)
    ROW_KEYS, ExecutorRunner, Runner, per_query_mean, run_repeated, summarize, trace_calls,
)
from hieramas_gnn.tasks.base import Question


def evaluate_designs(method: str, designs: Sequence[Design], questions: Sequence[Question],
                     runner: Runner, **extra: Any) -> dict[str, Any]:
    """Run one design per question and summarise (the design rule has already been applied)."""
    traces = runner.run(list(zip(designs, questions)))
    return summarize(method, traces, **extra)


def evaluate_rule(method: str, rule: Callable[[Sequence[Question]], list[Design]],
                  questions: Sequence[Question], runner: Runner, **extra: Any) -> dict[str, Any]:
    """Apply a design rule (questions -> designs, e.g. a policy's choice) and evaluate it."""
    return evaluate_designs(method, rule(questions), questions, runner, **extra)


def aggregate_seeds(rows_per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mean over seeds per method, with `<metric>_std` columns and `seeds` (the count); a mixed
    task's `accuracy_task_mean` (with its std) and `by_component` too."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for rows in rows_per_seed:
        for row in rows:
            by_method.setdefault(row["method"], []).append(row)
    out = []
    for method, rows in by_method.items():
        agg: dict[str, Any] = {"method": method, "seeds": len(rows)}
        keys = list(ROW_KEYS[1:]) + (["accuracy_task_mean"] if all("accuracy_task_mean" in r for r in rows) else [])
        for key in keys:
            vals = [float(r[key]) for r in rows]
            agg[key] = statistics.fmean(vals)
            agg[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        if all("by_component" in r for r in rows):  # a mixed task: per component, the mean over seeds
            names = sorted({c for r in rows for c in r["by_component"]})
            agg["by_component"] = {c: statistics.fmean(float(r["by_component"].get(c, 0.0)) for r in rows)
                                   for c in names}
        out.append(agg)
    return out
