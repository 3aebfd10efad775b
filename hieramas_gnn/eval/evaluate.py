"""Evaluation: run designs on held-out queries and summarise them as `hieramas baselines` rows.

A `Runner` turns (Design, Question) pairs into traces; `ExecutorRunner` is the real one (the MAS
executor behind the LLM client and its rollout cache) and counts the rollouts it ran, so
comparators can be held to the same rollout budget. A row has the `hieramas baselines` columns:
method, accuracy, cost_usd (mean per query), tokens (mean per query), calls (mean per query),
latency_ms_p50 (median per-query latency), plus n and n_failed.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from hieramas_gnn.mas.design import Design
from hieramas_gnn.tasks.base import Question

ROW_KEYS = ("method", "accuracy", "cost_usd", "tokens", "calls", "latency_ms_p50")


class Runner(Protocol):
    """Runs designs; `rollouts` counts the design executions made so far."""

    rollouts: int

    def run(self, jobs: Sequence[tuple[Design, Question]]) -> list[Any]:
        """Traces (with correct, cost_usd, tokens, latency_ms, calls, failed) in job order."""
        ...


@dataclass
class ExecutorRunner:
    """The real runner: `mas.executor.run_many` over the client (and its cache)."""

    client: Any
    task: Any
    roleset: Any
    max_in_flight: int = 64
    sample_index: int = 0
    rollouts: int = field(default=0)

    def run(self, jobs: Sequence[tuple[Design, Question]]) -> list[Any]:
        from hieramas_gnn.mas import executor

        self.rollouts += len(jobs)
        coros_jobs = [executor.Job(design=d, question=q, task=self.task, roleset=self.roleset,
                                   sample_index=self.sample_index) for d, q in jobs]
        return asyncio.run(executor.run_many(coros_jobs, self.client, max_in_flight=self.max_in_flight))


def trace_calls(trace: Any) -> int:
    calls = getattr(trace, "calls", 0)
    return calls if isinstance(calls, int) else len(calls)


def summarize(method: str, traces: Sequence[Any], **extra: Any) -> dict[str, Any]:
    """One results row from the traces of one method (one trace per held-out query)."""
    n = len(traces)
    if n == 0:
        raise ValueError(f"no traces to summarise for method {method!r}")
    ok = [t for t in traces if not getattr(t, "failed", False)]
    row = {
        "method": method,
        "accuracy": sum(bool(t.correct) for t in ok) / n,  # a failed run counts as wrong
        "cost_usd": sum(float(t.cost_usd) for t in traces) / n,
        "tokens": sum(int(t.tokens) for t in traces) / n,
        "calls": sum(trace_calls(t) for t in traces) / n,
        "latency_ms_p50": float(statistics.median(float(t.latency_ms) for t in traces)),
        "n": n,
        "n_failed": n - len(ok),
    }
    row.update(extra)
    return row


def evaluate_designs(method: str, designs: Sequence[Design], questions: Sequence[Question],
                     runner: Runner, **extra: Any) -> dict[str, Any]:
    """Run one design per question and summarise (the design rule has already been applied)."""
    traces = runner.run(list(zip(designs, questions)))
    return summarize(method, traces, **extra)


def evaluate_rule(method: str, rule: Callable[[Sequence[Question]], list[Design]],
                  questions: Sequence[Question], runner: Runner, **extra: Any) -> dict[str, Any]:
    """Apply a design rule (questions -> designs, e.g. a policy's choice) and evaluate it."""
    return evaluate_designs(method, rule(questions), questions, runner, **extra)


def run_repeated(runner: Runner, designs: Sequence[Design], questions: Sequence[Question],
                 runs: int) -> list[Any]:
    """Each (design, question) pair `runs` times as independent samples (the runner's
    `sample_index` set to 0..runs-1, then restored). Traces run-major: run r of query i is
    `traces[r * len(questions) + i]`. With runs == 1 the runner is left as it is."""
    if runs == 1:
        return runner.run(list(zip(designs, questions)))
    first = runner.sample_index
    traces: list[Any] = []
    try:
        for r in range(runs):
            runner.sample_index = r
            traces.extend(runner.run(list(zip(designs, questions))))
    finally:
        runner.sample_index = first
    return traces


def per_query_mean(values: Sequence[float], runs: int) -> list[float]:
    """Per query, the mean over runs of run-major `values` (as `run_repeated` returns them)."""
    n = len(values) // runs
    return [sum(values[r * n + i] for r in range(runs)) / runs for i in range(n)]


def aggregate_seeds(rows_per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mean over seeds per method, with `<metric>_std` columns and `seeds` (the count)."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for rows in rows_per_seed:
        for row in rows:
            by_method.setdefault(row["method"], []).append(row)
    out = []
    for method, rows in by_method.items():
        agg: dict[str, Any] = {"method": method, "seeds": len(rows)}
        for key in ROW_KEYS[1:]:
            vals = [float(r[key]) for r in rows]
            agg[key] = statistics.fmean(vals)
            agg[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(agg)
    return out
