"""Rollout cache benchmark: lookup latency at 1M records, and client overhead on a cache hit.

1. `lookup`: a cache file of `n_records` (1M; 10k with --quick) realistic records, built with
   executemany in a temp folder (kept out of the timing), reopened; then `RolloutCache.get` of
   random present keys and of absent keys, timed one by one: p50 / p99 in microseconds.
2. `client_hit`: `LLMClient.complete` on requests that are all in the cache (key hashing,
   lookup, record building, stats), sequentially in one event loop: per-call p50 / p99 and mean
   in microseconds, next to the bare lookup, so the difference is the client's own overhead.

`run(quick)` returns the figures; `python -m bench.bench_cache [--quick]` prints them as JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

TEXT = ("Let me work through this carefully. First compute the subtotal, then apply the rate, "
        "and finally round to the nearest integer. The answer is 42.")


def _pct(values_ns: list[int], q: float) -> float:
    """Percentile q (0-100) in microseconds."""
    ordered = sorted(values_ns)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] / 1000.0


def build(path: Path, n: int, batch: int = 50_000) -> list[str]:
    """Fill a cache file with n records via executemany; returns the keys."""
    from hieramas_gnn.llm.cache import RolloutCache, row_checksum

    cache = RolloutCache(path)
    conn = cache._connection()  # bulk load through the cache's own schema and pragmas
    sql = ("INSERT INTO records (key, model, text, prompt_tokens, completion_tokens, cost_usd, "
           "latency_ms, created_at, request, checksum) VALUES (?,?,?,?,?,?,?,?,?,?)")
    now = time.time()
    keys: list[str] = []
    for start in range(0, n, batch):
        reqs = [json.dumps({"messages": [{"role": "user", "content": f"question {i}"}],
                            "model": f"sim/model-{i % 8}", "sample_index": 0})
                for i in range(start, min(n, start + batch))]
        batch_keys = [hashlib.sha256(r.encode()).hexdigest() for r in reqs]  # key = sha256(request)
        keys += batch_keys
        rows = [(k, f"sim/model-{i % 8}", f"{TEXT} #{i}", 120 + i % 50, 40 + i % 30, 1e-4, 800.0, now, r)
                for i, k, r in zip(range(start, start + len(reqs)), batch_keys, reqs)]
        rows = [(*row, row_checksum(row)) for row in rows]  # as `RolloutCache.put` writes them
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    cache.close()
    return keys


def bench_lookup(path: Path, keys: list[str], n_lookups: int, rng: random.Random) -> dict:
    from hieramas_gnn.llm.cache import RolloutCache

    cache = RolloutCache(path)
    hits, misses = [], []
    sample = [keys[rng.randrange(len(keys))] for _ in range(n_lookups)]
    absent = [hashlib.sha256(f"absent {i}".encode()).hexdigest() for i in range(n_lookups // 4)]
    for key in sample[:1000]:  # warm the page cache the way a long run would
        cache.get(key)
    for key in sample:
        t0 = time.perf_counter_ns()
        rec = cache.get(key)
        hits.append(time.perf_counter_ns() - t0)
        assert rec is not None
    for key in absent:
        t0 = time.perf_counter_ns()
        assert cache.get(key) is None
        misses.append(time.perf_counter_ns() - t0)
    size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    cache.close()
    return {"hit_p50_us": _pct(hits, 50), "hit_p99_us": _pct(hits, 99),
            "miss_p50_us": _pct(misses, 50), "miss_p99_us": _pct(misses, 99),
            "lookups": len(hits) + len(misses), "file_mb": round(size_mb, 1)}


def bench_client_hit(folder: Path, n_calls: int) -> dict:
    """Per-call time of LLMClient.complete when every request is a cache hit."""
    from hieramas_gnn.llm.cache import RolloutCache, canonical_json, canonical_request, request_key
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import pool_from_dict
    from hieramas_gnn.llm.types import LLMRecord, LLMRequest

    pool = pool_from_dict({"models": [{"name": "m", "litellm_model": "openai/m",
                                       "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}]},
                          where="bench", default_name="bench")
    cache = RolloutCache(folder / "hits.sqlite")
    meta = {"task": "gsm8k", "role": "solver", "position": "proposer"}
    reqs = [LLMRequest("m", ({"role": "system", "content": "You are a careful solver."},
                             {"role": "user", "content": f"Question {i}: {TEXT}"}),
                       max_tokens=512, prompt_version="v1", metadata={**meta, "question_id": f"q{i}"})
            for i in range(n_calls)]
    for r in reqs:
        key = request_key(r, "openai/m")
        cache.put(LLMRecord(key, "m", TEXT, 60, 30, 1e-4, 500.0, False, time.time(), "openai/m"),
                  canonical_json(canonical_request(r, "openai/m")))
    client = LLMClient(pool, cache)

    async def go() -> list[int]:
        times = []
        for r in reqs:
            t0 = time.perf_counter_ns()
            rec = await client.complete(r)
            times.append(time.perf_counter_ns() - t0)
            assert rec.cache_hit
        return times

    asyncio.run(go())  # warm-up pass (imports, page cache)
    times = asyncio.run(go())
    bare = []
    for r in reqs:
        key = request_key(r, "openai/m")
        t0 = time.perf_counter_ns()
        cache.get(key, "m")
        bare.append(time.perf_counter_ns() - t0)
    assert client.stats.calls == 0
    return {"calls": n_calls, "p50_us": _pct(times, 50), "p99_us": _pct(times, 99),
            "mean_us": statistics.fmean(times) / 1000.0, "bare_lookup_p50_us": _pct(bare, 50),
            "overhead_p50_us": _pct(times, 50) - _pct(bare, 50)}


def run(quick: bool = False) -> dict:
    n_records = 10_000 if quick else 1_000_000
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        keys = build(folder / "big.sqlite", n_records)
        build_s = time.perf_counter() - t0
        lookup = bench_lookup(folder / "big.sqlite", keys, 1_000 if quick else 20_000, rng)
        lookup.update(records=n_records, build_s=round(build_s, 1))
        client_hit = bench_client_hit(folder, 200 if quick else 5_000)
    return {"lookup": lookup, "client_hit": client_hit}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
