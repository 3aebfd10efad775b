"""Executor benchmark: dataflow scheduling against the critical path, and run_many's call occupancy.

Measured with the instrumented fake client (`hieramas_gnn.mas.testing.FakeClient`), which sleeps
a fixed simulated latency per call and integrates the number of calls in flight over time:

1. `critical_path`: a 5-role design, 3 proposers per role (so each role is 3 proposer calls then
   1 synthesizer call), a 3-level DAG (layers of 2, 2 and 1 roles), 50 ms per call. Its critical
   path is 3 levels x 2 calls + the decision = 7 x 50 ms = 350 ms. Target: wall / critical <= 1.1.
2. `run_many`: 200 queries of that design with at most 32 calls in flight. Target: a time-
   weighted mean of >= 28 calls in flight (between the first call's start and the last's end).
3. `overhead`: the same 200 queries at 0 ms per call: runtime CPU cost per call (prompt building,
   scheduling, parsing, tracing), for information.

`run(quick)` returns a dict of the figures; `python -m bench.bench_executor` prints it as JSON.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import Job, run_design, run_many
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import FakeClient, LetterTask
from hieramas_gnn.mas.topologies import layered

CALL_S = 0.05
MODELS = ("m1", "m2", "m3")


def bench_design() -> Design:
    roles = get_roleset("mmlu").names[:5]
    mixtures = tuple(Mixture(tuple(MODELS[(i + j) % 3] for j in range(3)), MODELS[i % 3])
                     for i in range(5))
    return Design(roles, mixtures, layered(5, [2, 2, 1]), MODELS[0])


def critical_path_ratio(repeats: int) -> dict:
    design, task, roleset = bench_design(), LetterTask(), get_roleset("mmlu")
    q = task.questions(1)[0]
    _, critical_ms = design.critical_path(call_ms=CALL_S * 1000)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        asyncio.run(run_design(design, q, task, FakeClient(latency_s=CALL_S), roleset))
        walls.append((time.perf_counter() - t0) * 1000)
    wall = statistics.median(walls)
    return {"levels": len(design.levels()), "calls": design.total_calls(),
            "critical_path_ms": critical_ms, "wall_ms_median": round(wall, 2),
            "wall_over_critical": round(wall / critical_ms, 4),
            "target": "<= 1.1", "ok": wall / critical_ms <= 1.1}


def run_many_occupancy(n_queries: int, max_in_flight: int, latency_s: float) -> dict:
    design, task, roleset = bench_design(), LetterTask(), get_roleset("mmlu")
    jobs = [Job(design, q, task, roleset) for q in task.questions(n_queries)]
    client = FakeClient(latency_s=latency_s)
    t0 = time.perf_counter()
    traces = asyncio.run(run_many(jobs, client, max_in_flight=max_in_flight))
    wall = time.perf_counter() - t0
    calls = sum(t.n_calls for t in traces)
    return {"queries": n_queries, "max_in_flight": max_in_flight, "calls": calls,
            "wall_s": round(wall, 3), "mean_in_flight": round(client.mean_in_flight, 2),
            "peak_in_flight": client.peak_in_flight, "failed": sum(t.failed for t in traces)}


def run(quick: bool = False) -> dict:
    occupancy = run_many_occupancy(200, 32, CALL_S)
    occupancy.update(target=">= 28", ok=occupancy["mean_in_flight"] >= 28)
    overhead = run_many_occupancy(50 if quick else 200, 32, 0.0)
    return {
        "critical_path": critical_path_ratio(3 if quick else 7),
        "run_many": occupancy,
        "overhead": {"calls": overhead["calls"], "wall_s": overhead["wall_s"],
                     "us_per_call": round(overhead["wall_s"] / overhead["calls"] * 1e6, 1)},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=False), indent=2))
