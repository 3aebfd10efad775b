"""SIGKILL trials of `hieramas collect`: kill at a random point, resume, compare with a clean run.

`kill_trial(folder, seed)` sets up a paced collect (two `faults/` models, 30 calls), starts it in a
subprocess, SIGKILLs it once `k` records are committed (k drawn from `seed`), re-runs it to the
end, and returns what was re-paid and whether the final cache equals `reference(folder)`'s.
Shared by test_kill_trials.py (heavy) and report.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml


def setup(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pool = {"name": "t", "models": [
        {"name": m, "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
        for m in ("a", "b")]}
    (folder / "pool.yaml").write_text(yaml.safe_dump(pool))
    cfg = {"task": "synthetic", "limit": 15, "pool": "pool.yaml", "designs": ["single"], "cache": "cache.sqlite",
           "client": {"rpm": 300, "backoff_base_s": 0.001, "backoff_max_s": 0.01}}
    (folder / "collect.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "collect.yaml"


def _cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "hieramas_gnn.cli", "collect", "--config", str(config), "--quiet",
            "--summary", str(config.parent / "summary.json")]


def records(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.Error:
        return 0


def contents(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, model, text, prompt_tokens, completion_tokens, cost_usd "
                            "FROM records ORDER BY key").fetchall()


def _finish(config: Path) -> dict:
    proc = subprocess.run(_cmd(config), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"collect exited {proc.returncode}: {proc.stderr[-1000:]}")
    return json.loads((config.parent / "summary.json").read_text())


def reference(folder: Path) -> list[tuple]:
    config = setup(folder)
    _finish(config)
    return contents(config.parent / "cache.sqlite")


def kill_trial(folder: Path, seed: int, expected: list[tuple]) -> dict:
    """One kill at a random committed-record count, then a resume; the figures of the trial."""
    config = setup(folder)
    cache = config.parent / "cache.sqlite"
    total = len(expected)
    k = random.Random(seed).randint(1, total - 3)
    proc = subprocess.Popen(_cmd(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while records(cache) < k and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    done = records(cache)
    resumed = _finish(config)
    return {"seed": seed, "killed_at_records": done, "killed": proc.returncode == -signal.SIGKILL,
            "repaid": resumed["provider_calls"] - (total - done), "identical": contents(cache) == expected}
