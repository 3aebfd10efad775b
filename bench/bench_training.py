"""Stage-1 training throughput: over cached rollouts (replay) and cold on `sim/` (the demo's regime).

The trainer of `bench/_setup.py`: 5 roles x 3 proposers per role (mixture policy, no skipping),
random DAGs from the stage-1 DAG pool, the sim pool (6 models, latency off), batches of 32
queries, the REINFORCE update (forward, backward, Adam step) included in every step.

1. `cold`: `steps` training steps with the cache off: every call is simulated (the demo's
   regime). Episodes/s (wall and CPU), calls per episode.
2. `replay`: the same steps, same seed, twice over one `rw` rollout cache: the first pass fills
   it, the second is timed and makes no provider call (asserted by `provider_calls == 0`): the
   figure users comparing with the published MAS code look at first (training over cached
   rollouts). Target >= 500 episodes/s.
   `runner_share` is the share of the step's CPU time spent running designs (executor, client,
   cache lookups); `torch_share` the rest (graph building, policy forward, loss, backward, step).

`replay_1_thread` / `cold_1_thread`: the same with `torch.set_num_threads(1)` (the policy's graphs
are tiny; on a shared 2-core machine torch's intra-op threads mostly spin).

Episodes/s are reported on CPU time too (`eps_per_cpu_s`: episodes / process CPU seconds),
which a loaded machine distorts less than wall time.

`run(quick)` returns the figures; `python -m bench.bench_training [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench._setup import make_trainer

TARGET_EPS = 500.0
BATCH = 32


class _TimedRunner:
    """Wraps a runner and adds up the CPU time spent in `run`."""

    def __init__(self, runner: Any) -> None:
        self.inner, self.cpu_s = runner, 0.0

    def run(self, jobs):
        t0 = time.process_time()
        try:
            return self.inner.run(jobs)
        finally:
            self.cpu_s += time.process_time() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def timed_steps(trainer: Any, steps: int) -> dict[str, Any]:
    """Run `steps` training steps; wall, CPU and the runner's CPU share."""
    runner = _TimedRunner(trainer.setup.runner)
    trainer.setup.runner = runner
    client = runner.inner.client
    calls0 = client.stats.calls
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer.train_step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    trainer.setup.runner = runner.inner
    episodes = steps * BATCH
    return {"steps": steps, "episodes": episodes, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "eps_per_s": round(episodes / wall, 1), "eps_per_cpu_s": round(episodes / cpu, 1),
            "provider_calls": client.stats.calls - calls0,
            "runner_share": round(runner.cpu_s / cpu, 3), "torch_share": round(1 - runner.cpu_s / cpu, 3)}


def replay_throughput(steps: int) -> dict[str, Any]:
    from hieramas_gnn.llm.cache import RolloutCache

    with tempfile.TemporaryDirectory() as tmp:
        cache = RolloutCache(Path(tmp) / "rollouts.sqlite", "rw")
        fill = make_trainer(Path(tmp), batch_size=BATCH, cache=cache)
        for _ in range(steps):
            fill.train_step()
        cached = make_trainer(Path(tmp), batch_size=BATCH, cache=cache)  # same seed: the same calls
        out = timed_steps(cached, steps)
        out["cache_hits"] = cached.setup.runner.client.stats.cache_hits
        cache.close()
    out.update(target=f">= {TARGET_EPS:g} eps/s", ok=out["eps_per_s"] >= TARGET_EPS)
    return out


def cold_throughput(steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(Path(tmp), batch_size=BATCH)
        trainer.train_step()  # warm-up: figures, per-item caches
        out = timed_steps(trainer, steps)
    out["calls_per_episode"] = round(out["provider_calls"] / out["episodes"], 1)
    return out


def run(quick: bool = False) -> dict:
    from hieramas_gnn.paths import ensure_offline_defaults

    ensure_offline_defaults()
    steps = 1 if quick else 12
    out = {"batch_size": BATCH, "roles": 5, "proposers_per_role": 3, "torch_threads": torch.get_num_threads(),
           "replay": replay_throughput(steps), "cold": cold_throughput(steps)}
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs: intra-op threads only spin on a shared 2-core machine
    try:
        out["replay_1_thread"] = replay_throughput(steps)
        out["cold_1_thread"] = cold_throughput(steps)
    finally:
        torch.set_num_threads(saved)
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
