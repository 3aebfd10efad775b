"""`hieramas bench [--only NAME] [--quick] [--out FILE]`: run the performance suite in `bench/`.

The suite lives beside the package (it is not installed with it), so this runs
`python -m bench.run` from the checkout; results go to `bench/results.json` by default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import REPO_ROOT


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (bench/) and write its results JSON")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    p.add_argument("--out", default=str(REPO_ROOT / "bench" / "results.json"), help="results JSON to update")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (REPO_ROOT / "bench" / "run.py").exists():
        raise UserError(f"no benchmark suite at {REPO_ROOT / 'bench'} (run from a source checkout)")
    cmd = [sys.executable, "-m", "bench.run", "--out", args.out]
    cmd += [arg for name in args.only or [] for arg in ("--only", name)]
    cmd += ["--quick"] if args.quick else []
    return subprocess.call(cmd, cwd=REPO_ROOT)
