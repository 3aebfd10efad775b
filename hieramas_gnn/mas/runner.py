"""Run designs over queries: the one runner every phase uses (training, validation, stage 2,
evaluation, the experiments), so `train` never imports `eval`.

A `Runner` turns (Design, Question) pairs into traces; `ExecutorRunner` is the real one (the MAS
executor behind the LLM client and its rollout cache) and counts the rollouts it ran, so
comparators can be held to the same rollout budget. `summarize` turns one method's traces into a
results row with the `hieramas baselines` columns: method, accuracy, cost_usd (mean per query),
tokens (mean per query), calls (mean per query), latency_ms_p50 (median per-query latency), plus n
and n_failed; on a mixed task also `by_component` and `accuracy_task_mean` (`component_accuracy`). `run_repeated` / `per_query_mean` run each pair several times (sample indices) and
average per query.
"""

from __future__ import annotations

import asyncio
import statistics
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence

from hieramas_gnn.mas import executor
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

    label: str | None = None
    """While set (`labelled(runner, text)`), every `run` shows a progress bar named `label`."""

    def run(self, jobs: Sequence[tuple[Design, Question]], on_done: Any = None) -> list[Any]:
        self.rollouts += len(jobs)
        coros_jobs = [executor.Job(design=d, question=q, task=self.task, roleset=self.roleset,
                                   sample_index=self.sample_index) for d, q in jobs]
        return self.run_jobs(coros_jobs, on_done=on_done)

    def run_jobs(self, jobs: Sequence[Any], on_done: Any = None) -> list[Any]:
        """Traces of arbitrary jobs (`async (client) -> Trace`, e.g. `mas.single.single_job`);
        `on_done(trace)` as each finishes."""
        from hieramas_gnn.progress import bar

        with bar(len(jobs), self.label or "", enabled=self.label is not None and len(jobs) > 0) as shown:
            def done(trace: Any) -> None:
                shown.update(1)
                if on_done is not None:
                    on_done(trace)

            return asyncio.run(executor.run_many(list(jobs), self.client, max_in_flight=self.max_in_flight,
                                                 on_done=done))


@contextmanager
def labelled(runner: Any, label: str) -> Iterator[Any]:
    """Within the block, the runner's `run` calls show a progress bar named `label` (runners
    without a `label`, e.g. a Ray runner with its own bar, are left as they are)."""
    if not hasattr(runner, "label"):
        yield runner
        return
    before = runner.label
    runner.label = label
    try:
        yield runner
    finally:
        runner.label = before


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
    row.update(component_accuracy([getattr(t, "component", None) for t in traces],
                                  [bool(t.correct) and not getattr(t, "failed", False) for t in traces]))
    row.update(extra)
    return row


def component_accuracy(components: Sequence[str | None], correct: Sequence[float]) -> dict[str, Any]:
    """A mixed task's per-component metrics of one method: `by_component` (accuracy per
    component, sorted by name) and `accuracy_task_mean` (their mean: the metric published mixed-task
    tables report); {} when no question has a component (not a mixed task)."""
    if not any(c is not None for c in components):
        return {}
    sums: dict[str, list[float]] = {}
    for c, x in zip(components, correct):
        sums.setdefault(str(c), []).append(float(x))
    by = {c: sum(v) / len(v) for c, v in sorted(sums.items())}
    return {"by_component": by, "accuracy_task_mean": sum(by.values()) / len(by)}


def run_repeated(runner: Runner, designs: Sequence[Design], questions: Sequence[Question],
                 runs: int, on_done: Any = None) -> list[Any]:
    """Each (design, question) pair `runs` times as independent samples (the runner's
    `sample_index` set to 0..runs-1, then restored). Traces run-major: run r of query i is
    `traces[r * len(questions) + i]`. With runs == 1 the runner is left as it is. `on_done(trace)`
    as each finishes (a progress bar)."""
    kw = {"on_done": on_done} if on_done is not None else {}
    if runs == 1:
        return runner.run(list(zip(designs, questions)), **kw)
    first = runner.sample_index
    traces: list[Any] = []
    try:
        for r in range(runs):
            runner.sample_index = r
            traces.extend(runner.run(list(zip(designs, questions)), **kw))
    finally:
        runner.sample_index = first
    return traces


def per_query_mean(values: Sequence[float], runs: int) -> list[float]:
    """Per query, the mean over runs of run-major `values` (as `run_repeated` returns them)."""
    n = len(values) // runs
    return [sum(values[r * n + i] for r in range(runs)) / runs for i in range(n)]
