"""`hieramas bench [--quick] [--json OUT] [--only NAME]`: run the performance suite in `bench/`.

The suite lives beside the package (it is not installed with it), so this runs
`python -m bench.run` from the checkout; results go to `bench/results.json` by default, with the
machine they came from. Figures: cold offline calls (`calls`), stage-1 training throughput over
cached rollouts and cold on sim/ (`training`), stage-2 scoring of K = 200 candidates
(`scoring`), peak RSS of the demo and of stage-1 on 10k queries (`memory`), scaling in roles,
pool size and cache records with tables and PNG plots (`scaling`), the rollout cache (`cache`),
the executor (`executor`) and the policy forward pass (`policy`). `--quick` is a smoke test
(small sizes, no demo run; what CI runs); it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import REPO_ROOT


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (bench/) and write its results JSON")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    p.add_argument("--json", "--out", dest="out", metavar="OUT", default=str(REPO_ROOT / "bench" / "results.json"),
                   help="results JSON to write / update (default bench/results.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (REPO_ROOT / "bench" / "run.py").exists():
        raise UserError(f"no benchmark suite at {REPO_ROOT / 'bench'} (run from a source checkout)")
    known = sorted(p.stem[len("bench_"):] for p in (REPO_ROOT / "bench").glob("bench_*.py"))
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        raise UserError(f"--only {unknown[0]}: no such benchmark (known: {', '.join(known)})")
    cmd = [sys.executable, "-m", "bench.run", "--json", str(Path(args.out).resolve())]
    cmd += [arg for name in args.only or [] for arg in ("--only", name)]
    cmd += ["--quick"] if args.quick else []
    return subprocess.call(cmd, cwd=REPO_ROOT)
