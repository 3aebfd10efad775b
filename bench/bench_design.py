"""Design choice for unseen question text, its embedding included: one at a time and batched.

The bundle of `bench/_bundle.py` (a MATH-L5 replay bundle: MiniLM embedder; quick: the sim
bundle), loaded with `Policy.load(bundle, cache=None)` and no embedding cache on disk, one torch
thread (as `hieramas serve` runs). The questions are generated texts no task holds (numbers drawn
from a seeded generator, every text distinct), so every design pays the text's embedding and the
policy's forward. A warm-up question first (`first_ms`; the embedder's model is already loaded
by then: `Policy.load` itself no longer loads it, the bundle stores its description embeddings).

- `unseen`: `Policy.design(text)` for each of `n` questions (>= 20), process CPU ms and wall ms
  per question; `p50_ms` (CPU, the summary's `design_unseen_ms_p50`; target <= 30 ms), p90, max.
- `batched`: `Policy.designs(texts)` (the batch API) over `n` further questions (>= 200) in one
  call: `questions_per_s` = n / process CPU s (the summary's `design_batched_per_s`; target >= 200).

`run(quick)` returns the figures; `python -m bench.bench_design [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._bundle import bundle

TARGET_P50_MS = 30.0
TARGET_PER_S = 200.0
TEMPLATES = (
    "Let x = {a}. Find the remainder when x^{b} + {c} is divided by {d}.",
    "A rectangle has sides {a} and {b}. A square has the same perimeter plus {c}. What is the area of the square modulo {d}?",
    "How many positive integers below {a}{b} are divisible by {c} but not by {d}?",
    "Compute the sum of the digits of {a} * {b} + {c} - {d}.",
)


def questions(n: int, seed: int) -> list[str]:
    """n distinct generated question texts (no task holds them)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        t = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        text = t.format(**{k: int(rng.integers(2, 10_000)) for k in "abcd"})
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run(quick: bool = False) -> dict:
    import torch

    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.serve.policy import Policy

    ensure_offline_defaults()
    n_one, n_batch = (20, 200) if not quick else (5, 20)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="hieramas-bench-design-") as tmp:
            path, what = bundle(Path(tmp), quick)
            policy = Policy.load(path, cache=None)
            texts = questions(1 + n_one + n_batch, seed=0)
            c0, w0 = time.process_time(), time.perf_counter()
            policy.design(texts[0])
            first = ((time.process_time() - c0) * 1000, (time.perf_counter() - w0) * 1000)
            cpu_ms, wall_ms = [], []
            for text in texts[1:1 + n_one]:
                c0, w0 = time.process_time(), time.perf_counter()
                policy.design(text)
                cpu_ms.append((time.process_time() - c0) * 1000)
                wall_ms.append((time.perf_counter() - w0) * 1000)
            batch = texts[1 + n_one:]
            c0, w0 = time.process_time(), time.perf_counter()
            designs = policy.designs(batch)
            cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
    finally:
        torch.set_num_threads(saved)
    assert len(designs) == len(batch)
    p50 = statistics.median(cpu_ms)
    return {
        "bundle": what, "torch_threads": 1, "first_ms": {"cpu": round(first[0], 1), "wall": round(first[1], 1)},
        "unseen": {"n": n_one, "p50_ms": round(p50, 2), "p90_ms": round(_pct(cpu_ms, 90), 2),
                   "max_ms": round(max(cpu_ms), 2), "wall_p50_ms": round(statistics.median(wall_ms), 2),
                   "wall_max_ms": round(max(wall_ms), 2), "clock": "process CPU",
                   "target": f"<= {TARGET_P50_MS:g} ms p50", "ok": None if quick else p50 <= TARGET_P50_MS},
        "batched": {"n": n_batch, "cpu_s": round(cpu_s, 3), "wall_s": round(wall_s, 3),
                    "questions_per_s": round(n_batch / cpu_s, 1) if cpu_s > 0 else None,
                    "questions_per_wall_s": round(n_batch / wall_s, 1) if wall_s > 0 else None,
                    "api": "Policy.designs", "target": f">= {TARGET_PER_S:g} per CPU s",
                    "ok": None if quick else cpu_s > 0 and n_batch / cpu_s >= TARGET_PER_S},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
