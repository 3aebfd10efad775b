"""Ray scale-out benchmark: rollout throughput with 1 vs 2 Ray workers on the `sim` backend.

Every rollout is a fixed 3-role design (2 proposers per role, a synthesizer and the decision:
10 calls) on a synthetic question; the sim backend awaits a fixed simulated latency per call
(`backend.sim.latency: fixed`, 500 ms), so throughput is bounded by calls in flight, not by the CPU.
No cache: every call is made. Two settings, each with 1 and 2 workers:

1. `latency_bound`: every worker may keep `PER_WORKER` calls in flight (what adding a machine
   with its own limits gives you). Expected: ~2x rollouts/s with 2 workers, as long as the
   driver and the cores keep up (this machine has 2 cores shared with the driver).
2. `rate_limited`: the same, but every model has a per-key limit of `RPM` requests per minute,
   which the workers *share* (each gets rpm / N). Expected: no speed-up; the key is the
   bottleneck (docs/DISTRIBUTED.md has the formula for N workers).

A local cluster is started (`ray.init(num_cpus=2)`) unless Ray is already up; its start-up time
is reported apart and not counted in the throughput. `--quick` (a smoke test): 8 queries at
20 ms per call, the latency-bound setting only. `run(quick)` returns the figures; `python -m bench.bench_ray` prints them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from hieramas_gnn.mas.design import Design, Mixture

LATENCY_MS = 500  # a fast real LLM call; short enough latencies make this machine's 2 cores the bound
QUICK_LATENCY_MS = 20  # the smoke test: the code paths, not the figures
PER_WORKER = 16
RPM = 240.0  # per model: 4 calls/s; the busiest model has 3 calls per rollout -> <= 1.33 rollouts/s


def bench_design(roles: list[str], models: list[str]) -> Design:
    mixtures = tuple(Mixture((models[i % 6], models[(i + 1) % 6]), models[(i + 2) % 6]) for i in range(3))
    return Design(tuple(roles[:3]), mixtures, ((0, 1), (1, 2)), models[0])


def throughput(workers: int, n_queries: int, rpm: float | None, latency_ms: float = LATENCY_MS) -> dict:
    from hieramas_gnn.distributed.runner import RayRunner
    from hieramas_gnn.llm.client import ClientConfig
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.tasks import get_task

    task = get_task("synthetic")
    roleset, pool = get_roleset(task.family), load_pool("sim")
    design = bench_design(roleset.names, pool.names)
    questions = task.load(limit=n_queries)
    config = ClientConfig(max_concurrency=PER_WORKER * workers, per_model_concurrency=PER_WORKER * workers,
                          rpm=rpm)
    runner = RayRunner(task=task, roleset=roleset, pool=pool, client_config=config, workers=workers,
                       max_in_flight=PER_WORKER * workers,
                       backend={"sim": {"latency": "fixed", "fixed_latency_ms": latency_ms}})
    try:
        # Warm-up, untimed: every worker imports litellm and loads the sim backend once.
        runner.run([(design, q) for q in questions[:4 * workers]])
        t0 = time.perf_counter()
        traces = runner.run([(design, q) for q in questions])
        wall = time.perf_counter() - t0
    finally:
        runner.close()
    calls = sum(t.n_calls for t in traces)
    return {"workers": workers, "rollouts": len(traces), "calls": calls, "wall_s": round(wall, 3),
            "rollouts_per_s": round(len(traces) / wall, 2), "calls_per_s": round(calls / wall, 1),
            "failed": sum(t.failed for t in traces)}


def scaling(n_queries: int, rpm: float | None, latency_ms: float = LATENCY_MS) -> dict:
    one, two = throughput(1, n_queries, rpm, latency_ms), throughput(2, n_queries, rpm, latency_ms)
    return {"1_worker": one, "2_workers": two,
            "speedup": round(two["rollouts_per_s"] / one["rollouts_per_s"], 3)}


def run(quick: bool = False) -> dict:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    t0 = time.perf_counter()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    startup = time.perf_counter() - t0
    try:
        n, latency = (8, QUICK_LATENCY_MS) if quick else (96, LATENCY_MS)
        latency_bound = scaling(n, None, latency)
        latency_bound.update(target="speedup >= 1.5", ok=latency_bound["speedup"] >= 1.5)
        if quick:  # a smoke test: each Ray worker start costs seconds of CPU on 2 cores
            limited: dict = {"note": "not run with --quick"}
        else:
            limited = scaling(n // 2, RPM, latency)
            limited.update(expected="speedup ~ 1 (the per-key limit is shared)",
                           rpm_per_model=RPM, limit_rollouts_per_s=round(RPM / 60 / 3, 3))
        return {"sim_latency_ms": latency, "per_worker_in_flight": PER_WORKER,
                "ray_startup_s": round(startup, 2), "latency_bound": latency_bound,
                "rate_limited": limited}
    finally:
        if started:
            ray.shutdown()


if __name__ == "__main__":
    print(json.dumps(run(quick=False), indent=2))
