"""How cost grows: episode time vs roles and pool size, cache lookup vs records.

1. `roles`: cold stage-1 training steps (the trainer of `bench/_setup.py`, cache off, sim pool of
   6 models, 3 proposers per role, one torch thread) at 3, 6, 9 and 12 roles: CPU ms per episode, calls per episode
   and CPU ms per call. Each role adds 3 proposer calls and a synthesizer call, so calls grow
   linearly in roles x proposers; the target is that time per call stays flat (episode time at
   most linear in roles x proposers): `growth` is ms per call at the largest size over the smallest.
2. `pool`: the same at 5 roles over pools of 4, 8, 16 and 32 models (the shipped sim pool, then
   inline sim models).
3. `cache`: `RolloutCache.get` p50 / p99 of present keys in caches of 10k, 100k and 1M realistic
   records (`bench_cache.build`; `CACHE_SIZES`, add 10M there); target p99 <= 1 ms. With --quick:
   1k and 10k.

Each series is written as a markdown table (`bench/scaling.md`) and a PNG plot
(`bench/scaling_episode.png`, `bench/scaling_cache.png`); with --quick they go to a temp folder.

`run(quick)` returns the figures; `python -m bench.bench_scaling [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._setup import K_PROPOSERS, make_trainer

BENCH = Path(__file__).resolve().parent
BATCH = 16
CACHE_SIZES_QUICK = (1_000, 10_000)
# For 10M records too: add 10_000_000 here to measure it (a 4.4 GB file, ~2 min to
# build on an idle 2-core machine, far more on a loaded one; left out of the default run).
CACHE_SIZES = (10_000, 100_000, 1_000_000)


def episode_cost(n_roles: int, n_models: int, steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(Path(tmp), n_roles=n_roles, n_models=n_models, n_train=128, batch_size=BATCH)
        trainer.train_step()  # warm-up
        client = trainer.setup.runner.client
        calls0, c0 = client.stats.calls, time.process_time()
        for _ in range(steps):
            trainer.train_step()
        cpu, calls = time.process_time() - c0, client.stats.calls - calls0
    episodes = steps * BATCH
    return {"roles": n_roles, "models": n_models, "ms_per_episode": round(cpu / episodes * 1000, 2),
            "calls_per_episode": round(calls / episodes, 1), "ms_per_call": round(cpu / max(calls, 1) * 1000, 3)}


def cache_lookup(sizes: list[int], n_lookups: int) -> list[dict[str, Any]]:
    from bench.bench_cache import bench_lookup, build

    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            t0 = time.perf_counter()
            keys = build(Path(tmp) / "c.sqlite", n)
            build_s = time.perf_counter() - t0
            res = bench_lookup(Path(tmp) / "c.sqlite", keys, n_lookups, random.Random(0))
        rows.append({"records": n, "hit_p50_us": round(res["hit_p50_us"], 1), "hit_p99_us": round(res["hit_p99_us"], 1),
                     "miss_p99_us": round(res["miss_p99_us"], 1), "file_mb": res["file_mb"],
                     "build_s": round(build_s, 1)})
    return rows


def _growth(rows: list[dict[str, Any]]) -> float:
    return round(rows[-1]["ms_per_call"] / rows[0]["ms_per_call"], 2)


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot(out: Path, roles: list[dict], pool: list[dict], cache: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, rows, key, label in ((axes[0], roles, "roles", f"roles ({K_PROPOSERS} proposers each, 6 models)"),
                                 (axes[1], pool, "models", "pool size (5 roles)")):
        xs = [r[key] for r in rows]
        ax.plot(xs, [r["ms_per_episode"] for r in rows], "o-", label="CPU ms / episode")
        ax.plot(xs, [rows[0]["ms_per_episode"] * r["calls_per_episode"] / rows[0]["calls_per_episode"] for r in rows],
                "s--", label="linear in calls (from the smallest)")
        ax.set_xlabel(label)
        ax.set_ylabel("CPU ms")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Episode time (cold sim, cache off)")
    fig.tight_layout()
    ep = out / "scaling_episode.png"
    fig.savefig(ep, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    xs = [r["records"] for r in cache]
    ax.plot(xs, [r["hit_p50_us"] for r in cache], "o-", label="p50")
    ax.plot(xs, [r["hit_p99_us"] for r in cache], "s-", label="p99")
    ax.axhline(1000, color="red", ls=":", label="target p99 1 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records in the cache")
    ax.set_ylabel("lookup µs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    ca = out / "scaling_cache.png"
    fig.savefig(ca, dpi=100)
    plt.close(fig)
    return [str(ep), str(ca)]


def run(quick: bool = False) -> dict:
    from hieramas_gnn.paths import ensure_offline_defaults

    import torch

    ensure_offline_defaults()
    steps = 1 if quick else 2
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # growth, not thread contention: one intra-op thread (restored below)
    try:
        roles = [episode_cost(n, 6, steps) for n in ((3, 6) if quick else (3, 6, 9, 12))]
        pool = [episode_cost(5, m, steps) for m in ((4, 8) if quick else (4, 8, 16, 32))]
    finally:
        torch.set_num_threads(saved)
    cache = cache_lookup(list(CACHE_SIZES_QUICK if quick else CACHE_SIZES), 1_000 if quick else 20_000)
    out = Path(tempfile.mkdtemp(prefix="bench-scaling-")) if quick else BENCH
    md = (f"# Scaling (`hieramas bench`{' --quick' if quick else ''})\n\n## Episode time vs roles\n\n{table(roles)}\n\n"
          f"## Episode time vs pool size\n\n{table(pool)}\n\n## Cache lookup vs records\n\n{table(cache)}\n")
    (out / "scaling.md").write_text(md)
    return {"roles": roles, "roles_growth_per_call": _growth(roles), "pool": pool,
            "pool_growth_per_call": _growth(pool), "cache": cache,
            "cache_p99_max_us": max(r["hit_p99_us"] for r in cache),
            "target": "ms per call flat (growth <= ~1.2); cache p99 <= 1000 us",
            "ok": _growth(roles) <= 1.2 and _growth(pool) <= 1.2 and max(r["hit_p99_us"] for r in cache) <= 1000,
            "table": str(out / "scaling.md"), "plots": plot(out, roles, pool, cache)}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
