"""Peak memory (and CPU time) of `hieramas demo` and of stage-1 training on 10k queries.

Each runs in its own child process, measured by `/usr/bin/time -v` when it exists (maximum
resident set size, user + system CPU seconds, wall), else by `os.wait4`'s rusage (the same
kernel figures):

1. `demo`: `python -m hieramas_gnn.cli demo --out DIR` from an empty folder (the full demo:
   3 seeds, 512 + 32 training and 512 test queries; `--quick --seeds 1` with --quick). Targets:
   peak RSS <= 1.5 GB, CPU time <= 1/4 of the 491 s measured before the in-process call path on this project's
   2-core machine. DIR is kept (`tempdir/hieramas-bench-demo`) so its results.json can be
   compared with a run of the code before. Not run with --quick (a smoke test).
2. `stage1_10k`: a stage-1 trainer (`bench/_setup.py`: 5 roles x 3 proposers, sim pool, cache
   off) over 10,000 training queries (200 with --quick), 3 training steps of 32 queries.

`run(quick)` returns the figures; `python -m bench.bench_memory [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO_CPU_BEFORE_S = 491.0  # user + system of `hieramas demo` before the in-process call path
TARGET_RSS_MB = 1500.0

STAGE1 = """
import sys, tempfile
from pathlib import Path
from bench._setup import make_trainer
t = make_trainer(Path(tempfile.mkdtemp()), n_train=int(sys.argv[1]), batch_size=32)
for _ in range(3):
    t.train_step()
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Peak RSS (MB), CPU seconds and wall seconds of one child command."""
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    full = ["/usr/bin/time", "-v", *cmd] if timer else cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    out = {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
           "user_s": round(usage.ru_utime, 1), "sys_s": round(usage.ru_stime, 1), "wall_s": round(wall, 1),
           "measured_by": "os.wait4"}
    if timer:
        got = {k: re.search(pattern, err) for k, pattern in (
            ("rss", r"Maximum resident set size \(kbytes\): (\d+)"), ("user", r"User time \(seconds\): ([\d.]+)"),
            ("sys", r"System time \(seconds\): ([\d.]+)"))}
        if all(got.values()):
            user, sys_ = float(got["user"].group(1)), float(got["sys"].group(1))
            out.update(peak_rss_mb=round(int(got["rss"].group(1)) / 1024, 1), user_s=user, sys_s=sys_,
                       cpu_s=round(user + sys_, 1), measured_by="/usr/bin/time -v")
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def demo(quick: bool) -> dict[str, Any]:
    out = Path(tempfile.gettempdir()) / ("hieramas-bench-demo-quick" if quick else "hieramas-bench-demo")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "hieramas_gnn.cli", "demo", "--out", str(out)]
    cmd += ["--quick", "--seeds", "1"] if quick else []
    res = measure(cmd, _env())
    res.update(out=str(out), command=" ".join(["python", *cmd[1:]]))
    if not quick:
        res.update(cpu_before_s=DEMO_CPU_BEFORE_S, cpu_ratio=round(res["cpu_s"] / DEMO_CPU_BEFORE_S, 3),
                   target=f"peak RSS <= {TARGET_RSS_MB:g} MB, cpu_ratio <= 0.25",
                   ok=res["peak_rss_mb"] <= TARGET_RSS_MB and res["cpu_s"] <= DEMO_CPU_BEFORE_S / 4)
    return res


def stage1(n: int) -> dict[str, Any]:
    res = measure([sys.executable, "-c", STAGE1, str(n)], _env())
    res["queries"] = n
    return res


def run(quick: bool = False) -> dict:
    if quick:  # a smoke test: the demo itself is tested (and timed) elsewhere
        return {"stage1_200": stage1(200)}
    return {"demo": demo(quick), "stage1_10k": stage1(10000)}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
