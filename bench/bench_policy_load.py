"""`Policy.load` of a replay bundle, in a fresh child process so that every import counts.

What every `hieramas run` / `hieramas serve` / library user pays before the first design: the
interpreter, the imports (torch, PyG, the embedder, the pool, the task) and `Policy.load` itself
(verify the checksums, read the pool, build the policy and load its weights). The bundle is the
real MATH-L5 replay bundle of `bench/_bundle.py` (quick: the sim bundle). Figures, each the
median of `repeat` children (process CPU = user + system of the child, its reaped-children rusage):

- `cpu_s`: a child that runs `Policy.load(bundle, cache=None)` and exits (the summary's
  `policy_load_cpu_s`; target <= 2 s);
- `first_design_cpu_s`: the same child plus one design for an unseen question (the embedder's
  model is loaded on first use: what the first answer costs); not measured with --quick;
- `python_cpu_s`: a child that runs `pass` (the interpreter's own floor);
- `in_child`: where the loading child's CPU went (process time after the imports, after load).

`run(quick)` returns the figures; `python -m bench.bench_policy_load [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._bundle import REPO, bundle, env

TARGET_S = 2.0

CHILD = """
import json, sys, time
t0 = time.process_time()
from hieramas_gnn.serve.policy import Policy
t1 = time.process_time()
p = Policy.load(sys.argv[1], cache=None)
t2 = time.process_time()
if sys.argv[2] == "design":
    p.design("A bench question no task holds: what is 1234 * 5678 - 91011?")
t3 = time.process_time()
print(json.dumps({"startup_to_main_s": t0, "import_s": t1 - t0, "load_s": t2 - t1, "design_s": t3 - t2}))
"""


def _cpu(code: str, *args: str) -> tuple[float, str]:
    """(user + system CPU seconds of a child `python -c code args`, its stdout): the growth of
    this process's reaped-children rusage around it (the benchmark runs one child at a time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env(), capture_output=True, text=True,
                          check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"child exited {proc.returncode}: {proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def run(quick: bool = False) -> dict:
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="hieramas-bench-load-") as tmp:
        path, what = bundle(Path(tmp), quick)
        base = [_cpu("pass")[0] for _ in range(repeat)]
        loads = [_cpu(CHILD, str(path), "load") for _ in range(repeat)]
        firsts = [] if quick else [_cpu(CHILD, str(path), "design")[0] for _ in range(repeat)]
    cpu = statistics.median(c for c, _ in loads)
    parts = [json.loads(out.strip().splitlines()[-1]) for _, out in loads]
    return {"bundle": what, "repeat": repeat, "cpu_s": round(cpu, 3),
            "first_design_cpu_s": round(statistics.median(firsts), 3) if firsts else None,
            "python_cpu_s": round(statistics.median(base), 3),
            "in_child": {k: round(statistics.median(p[k] for p in parts), 3) for k in parts[0]},
            "target": f"<= {TARGET_S:g} s CPU", "ok": None if quick else cpu <= TARGET_S}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
