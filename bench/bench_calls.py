"""Cold offline calls: what one `sim/` call that misses the cache costs beyond the simulator.

The same fixed set of cold requests (cache off, latency off, proposer calls over synthetic
questions and the sim pool's models, each request distinct) is answered four ways, after one
warm-up pass that loads the figures and the simulator's per-item caches:

1. `simulator`: the registered sim handler's `answer()` alone (the simulator's own work);
2. `direct`: `LLMClient.complete` as it runs now (in-process providers called without litellm);
3. `litellm`: `LLMClient.complete` through `litellm.acompletion` (the path litellm users take);
4. `direct_cache_rw`: the direct path with an `rw` rollout cache (one committed SQLite insert
   per call, as in the demo).

Per call: CPU microseconds of this process (`time.process_time`, all threads: litellm logs from
a worker thread), so a loaded machine inflates the figures less than wall time would. The
framework overhead is a path's time minus the simulator's. `profile` writes a pyinstrument
text profile of the litellm and direct paths to `bench/profiles/` when pyinstrument is installed
(`pip install -c constraints.txt pyinstrument`).

`run(quick)` returns the figures; `python -m bench.bench_calls [--quick]` prints them as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROFILES = Path(__file__).resolve().parent / "profiles"
TARGET_US = 250.0


def requests(n: int, pool: Any) -> list[Any]:
    """n distinct cold proposer requests over synthetic questions and the pool's models."""
    from hieramas_gnn.llm.types import LLMRequest
    from hieramas_gnn.tasks import get_task

    qs = get_task("synthetic").load(split="train", limit=200)
    out = []
    for i in range(n):
        q = qs[i % len(qs)]
        meta = {"task": "synthetic", "question_id": q.id, "role": "Solver", "position": "proposer",
                "context_answers": []}
        out.append(LLMRequest(model=pool.names[i % len(pool.names)], sample_index=i // len(qs),
                              messages=({"role": "user", "content": f"Solve: {q.text}"},), metadata=meta))
    return out


def _client(pool: Any, cache_path: Path | None = None) -> Any:
    from hieramas_gnn.llm.cache import RolloutCache
    from hieramas_gnn.llm.client import ClientConfig, LLMClient

    cache = RolloutCache(cache_path, "rw") if cache_path else None
    return LLMClient(pool, cache, ClientConfig(max_concurrency=64, per_model_concurrency=64),
                     backend={"sim": {"latency": "off"}})


def _cpu_us_per_call(fn, n: int) -> float:
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) / n * 1e6


def _complete_all(client: Any, reqs: list[Any]) -> None:
    async def go():
        for start in range(0, len(reqs), 64):  # 64 in flight, as an executor would keep them
            await asyncio.gather(*(client.complete(r) for r in reqs[start:start + 64]))

    asyncio.run(go())


def _simulate_all(client: Any, reqs: list[Any]) -> None:
    handler = client._handlers["sim"]
    for r in reqs:
        spec = client.pool.get(r.model)
        kw = client._in_process_kwargs(spec, r)
        handler.answer(spec.litellm_model.split("/", 1)[1], kw["messages"], kw["metadata"], kw["optional"])


def _via_litellm(fn):
    from hieramas_gnn.llm import client as client_mod

    saved = client_mod.IN_PROCESS
    client_mod.IN_PROCESS = ()
    try:
        return fn()
    finally:
        client_mod.IN_PROCESS = saved


def _profile(name: str, fn) -> str | None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    profiler = Profiler(interval=0.0005)
    profiler.start()
    fn()
    profiler.stop()
    PROFILES.mkdir(exist_ok=True)
    path = PROFILES / f"cold_call_{name}.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return str(path.relative_to(PROFILES.parent.parent))


def run(quick: bool = False) -> dict:
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.paths import ensure_offline_defaults

    ensure_offline_defaults()
    pool = load_pool("sim")
    n = 100 if quick else 3000
    reqs = requests(n, pool)
    client = _client(pool)
    _complete_all(client, reqs)  # warm-up: figures, per-item caches, litellm's first-call work
    _via_litellm(lambda: _complete_all(_client(pool), reqs[:64]))
    sim_us = _cpu_us_per_call(lambda: _simulate_all(client, reqs), n)
    direct_us = _cpu_us_per_call(lambda: _complete_all(_client(pool), reqs), n)
    litellm_us = _cpu_us_per_call(lambda: _via_litellm(lambda: _complete_all(_client(pool), reqs)), n)
    with tempfile.TemporaryDirectory() as tmp:
        rw_us = _cpu_us_per_call(lambda: _complete_all(_client(pool, Path(tmp) / "c.sqlite"), reqs), n)
    out: dict[str, Any] = {
        "calls": n,
        "simulator_us": round(sim_us, 1),
        "direct": {"us_per_call": round(direct_us, 1), "framework_us": round(direct_us - sim_us, 1)},
        "litellm": {"us_per_call": round(litellm_us, 1), "framework_us": round(litellm_us - sim_us, 1)},
        "direct_cache_rw": {"us_per_call": round(rw_us, 1), "framework_us": round(rw_us - sim_us, 1)},
        "speedup_framework": round((litellm_us - sim_us) / max(direct_us - sim_us, 1e-9), 1),
        "target_framework_us": f"<= {TARGET_US:g}",
        "ok": direct_us - sim_us <= TARGET_US,
    }
    if not quick:
        small = reqs[:1000]
        out["profiles"] = {"litellm": _profile("litellm", lambda: _via_litellm(lambda: _complete_all(_client(pool), small))),
                           "direct": _profile("direct", lambda: _complete_all(_client(pool), small))}
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
