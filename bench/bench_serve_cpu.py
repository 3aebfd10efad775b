"""Serving cost: process CPU of `hieramas serve` per chat-completion request, the whole path.

`hieramas serve` runs in a child process (`--cache-mode off --sim-latency off --torch-threads 1
--no-access-log`) over the load test's default bundle (`serve.testing.sim_bundle`: synthetic task,
3 roles over the `sim` pool, hashing embedder), and `serve.loadtest.run_load(url=...)` drives it
from this process with N requests at C concurrent. The server's CPU (user + system of all its
threads, from /proc/PID/stat) is read before and after the measured requests (after `warmup`
requests that load what the first request loads), so the figure is what the server spends per
request: HTTP + JSON, the design choice, and the MAS's calls answered by the simulator with its
latency off and no cache. Target: <= 10 ms CPU per request (>= 100 requests/s per core).

Full: 1,000 requests at 64 concurrent (as `python -m hieramas_gnn.serve.loadtest --requests
1000 --concurrency 64`) after 32 warm-up requests; quick: 8 at 2, no warm-up (a smoke test).

`run(quick)` returns the figures; `python -m bench.bench_serve_cpu [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench._bundle import REPO, env

TARGET_MS = 10.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hieramas serve exited {proc.returncode}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"hieramas serve did not answer /health within {timeout_s:g} s")


def run(quick: bool = False) -> dict:
    from hieramas_gnn.serve.loadtest import run_load
    from hieramas_gnn.serve.testing import sim_bundle

    n, concurrency, warmup = (8, 2, 0) if quick else (1000, 64, 32)
    with tempfile.TemporaryDirectory(prefix="hieramas-bench-serve-") as tmp:
        bundle = sim_bundle(Path(tmp) / "load")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "hieramas_gnn.cli", "serve", "--policy", str(bundle), "--port", str(port),
               "--cache", str(Path(tmp) / "rollouts.sqlite"), "--cache-mode", "off", "--sim-latency", "off",
               "--embed-cache", str(Path(tmp) / "embeddings"), "--no-access-log", "--torch-threads", "1",
               "--served-model-name", "bench"]
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(url, proc)
            start_cpu = cpu_s(proc.pid)
            warm = run_load(warmup, min(warmup, concurrency), url=url, model="bench") if warmup else {"errors": 0}
            c0 = cpu_s(proc.pid)
            load = run_load(n, concurrency, url=url, model="bench")
            c1 = cpu_s(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    per_request = (c1 - c0) * 1000 / n
    return {"requests": n, "concurrency": concurrency, "errors": load["errors"] + warm["errors"],
            "server_cpu_s": round(c1 - c0, 2), "cpu_ms_per_request": round(per_request, 2),
            "requests_per_cpu_s": round(n / (c1 - c0), 1) if c1 > c0 else None,
            "startup_and_warmup_cpu_s": round(c0 - start_cpu, 2),
            "wall_s": round(load["wall_s"], 2), "throughput_rps": round(load["throughput_rps"], 1),
            "p50_ms": round(load["p50_ms"], 1), "p99_ms": round(load["p99_ms"], 1),
            "server": "hieramas serve (child process), sim_bundle, sim latency off, cache off, 1 torch thread",
            "target": f"<= {TARGET_MS:g} ms CPU per request", "ok": None if quick else per_request <= TARGET_MS}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
