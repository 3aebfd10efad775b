"""Load test of `hieramas serve`: N chat-completion requests at C concurrent, figures to a file.

    python -m hieramas_gnn.serve.loadtest --requests 2000 --concurrency 64 --out bench/serve_load.json
    python -m hieramas_gnn.serve.loadtest --url http://127.0.0.1:8000 --model demo --api-key KEY ...

Without `--url` it serves a bundle itself (`--policy`, default: a tiny real bundle over the `sim`
pool, `serve.testing.sim_bundle`) in a background thread with the same uvicorn settings as
`hieramas serve`, the sim backend's latency off and the rollout cache off, so every request runs
the whole path (HTTP, design choice, the MAS's calls through litellm). The questions cycle over
the bundle task's test split. Each of C workers sends its requests one after another on its own
keep-alive connection. Reported: requests, errors (any status but 200, or a transport error),
status counts, latency p50 / p90 / p99 / max in ms, throughput, wall time, the server limits.
`run_load(...)` is the library entry (tests and `bench/bench_serve.py` call it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.serve.policy import Policy
from hieramas_gnn.serve.testing import sim_bundle
from hieramas_gnn.tasks import get_task


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


async def _drive(url: str, model: str, questions: list[str], n: int, concurrency: int,
                 api_key: str | None, timeout_s: float) -> tuple[list[float], Counter, float]:
    import httpx

    latencies: list[float] = []
    statuses: Counter = Counter()
    counter = iter(range(n))
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, headers=headers,
                                     limits=httpx.Limits(max_connections=1)) as client:
            for i in counter:
                body = {"model": model, "messages": [{"role": "user", "content": questions[i % len(questions)]}]}
                start = time.perf_counter()
                try:
                    resp = await client.post("/v1/chat/completions", json=body)
                    statuses[str(resp.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append((time.perf_counter() - start) * 1000.0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - start


def run_load(n_requests: int = 2000, concurrency: int = 64, *, url: str | None = None, model: str | None = None,
             policy: str | None = None, api_key: str | None = None, max_concurrency: int = 16,
             queue_limit: int = 256, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run the load test (module docstring) and return its figures."""
    if n_requests < 1 or concurrency < 1:
        raise UserError("--requests and --concurrency must be >= 1")
    server = None
    with tempfile.TemporaryDirectory(prefix="hieramas-load-") as tmp:
        if url is None:
            import torch

            from hieramas_gnn.serve.app import (  # lazy: loads fastapi
                ServeLimits,
                create_app,
            )  # lazy: loads fastapi
            from hieramas_gnn.serve.server import ServerThread  # lazy: loads fastapi

            torch.set_num_threads(1)  # as `hieramas serve` runs (its --torch-threads default)
            bundle = policy or sim_bundle(Path(tmp) / "load")
            served = Policy.load(bundle, cache=None, backend={"sim": {"latency": "off"}})
            limits = ServeLimits(max_concurrency=max_concurrency, queue_limit=queue_limit, api_key=api_key)
            server = ServerThread(create_app(served, limits))
            url, model = server.start(), served.name
            questions = [q.text for q in served.task.load(None, "test", limit=200)]
        else:
            if model is None:
                raise UserError("--model is needed with --url")
            questions = [q.text for q in get_task("synthetic").load(None, "test", limit=200)]
        try:
            latencies, statuses, wall = asyncio.run(_drive(url, model, questions, n_requests, concurrency,
                                                           api_key, timeout_s))
        finally:
            if server is not None:
                server.stop()
    ok = statuses.get("200", 0)
    return {"requests": n_requests, "concurrency": concurrency, "ok": ok, "errors": n_requests - ok,
            "status_counts": dict(statuses), "p50_ms": _pct(latencies, 50), "p90_ms": _pct(latencies, 90),
            "p99_ms": _pct(latencies, 99), "max_ms": max(latencies) if latencies else float("nan"),
            "throughput_rps": n_requests / wall if wall > 0 else float("nan"), "wall_s": wall,
            "server": {"max_concurrency": max_concurrency, "queue_limit": queue_limit, "backend": "sim, latency off",
                       "cache": "off"} if server is not None else {"url": url},
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hieramas_gnn.serve.loadtest", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests in all (default 2000)")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent clients (default 64)")
    p.add_argument("--out", default=None, help="write the figures to this JSON file")
    p.add_argument("--url", default=None, help="a running server (default: serve --policy in-process)")
    p.add_argument("--model", default=None, help="model name on --url")
    p.add_argument("--policy", default=None, help="bundle to serve in-process (default: a tiny sim bundle)")
    p.add_argument("--api-key", default=None, help="bearer token")
    p.add_argument("--max-concurrency", type=int, default=16, help="in-process server: MAS runs at once")
    p.add_argument("--queue-limit", type=int, default=256, help="in-process server: queued requests")
    args = p.parse_args(argv)

    try:
        figures = run_load(args.requests, args.concurrency, url=args.url, model=args.model, policy=args.policy,
                           api_key=args.api_key, max_concurrency=args.max_concurrency, queue_limit=args.queue_limit)
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
