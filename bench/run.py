"""Benchmark runner: `python -m bench.run [--json OUT] [--only NAME] [--quick]` (`hieramas bench`).

Discovers every `bench/bench_<name>.py` module exposing `run(quick: bool) -> dict`, runs them (or
the ones named by `--only`, repeatable), prints one table of the figures, and writes them to the
results JSON (default `bench/results.json`) under each benchmark's name, beside a `_meta` entry:
when, the machine it came from (`nproc`, CPU model, memory, load average before and after), the
Python / torch versions, the git commit and the quick flag. Results of benchmarks that were not
run this time are kept, so `--only` updates one entry. Each entry carries its own `_stamp`
(`when`, `commit`, `quick`; `dirty`: the tracked files changed against that commit, if any),
and after every benchmark the flat `summary` (one figure per key, `null` when missing) and its
`summary_detail` (target, met, source entry, stamp) are rebuilt from all stamped entries
(`bench/summary.py`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import summary

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names of the benchmarks (`bench_<name>.py` -> `<name>`), sorted."""
    return sorted(p.stem[len("bench_"):] for p in BENCH_DIR.glob("bench_*.py"))


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Nested dicts -> (dotted key, leaf) rows for the table."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, sub in value.items():
            rows += flatten(f"{prefix}.{key}" if prefix else str(key), sub)
        return rows
    return [(prefix, value)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(results: dict[str, Any]) -> None:
    rows = [row for name, res in results.items() for row in flatten(name, res)]
    width = max((len(k) for k, _ in rows), default=10)
    for key, value in rows:
        print(f"{key:<{width}}  {_fmt(value)}")


def _load() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine skews wall times)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """Where the figures came from: nproc, CPU model, memory, versions, commit."""
    import subprocess

    info: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "nproc": len(os.sched_getaffinity(0))
                            if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                                  if line.startswith("model name")), platform.processor())
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gb"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        info["cpu_model"] = platform.processor() or "unknown"
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, text=True,
                                        capture_output=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _dirty(results_file: Path) -> list[str] | None:
    """Tracked files changed against HEAD (what the stamp's commit does not hold), or None; the
    results file itself (rewritten by every run) does not count."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=BENCH_DIR, text=True,
                             capture_output=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    root = BENCH_DIR.parent.resolve()
    mine = str(results_file.resolve().relative_to(root)) if results_file.resolve().is_relative_to(root) else None
    return sorted(p for p in (line[3:] for line in out.splitlines() if line.strip()) if p != mine) or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", "--out", dest="out", default=str(BENCH_DIR / "results.json"), metavar="OUT",
                        help="results JSON to update (default bench/results.json)")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = discover()
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        print(f"bench.run: unknown benchmark {unknown[0]!r} (known: {', '.join(names)})", file=sys.stderr)
        return 2
    selected = args.only or names
    out = Path(args.out)
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    ran: dict[str, Any] = {}
    load_before = _load()
    for name in selected:
        module = importlib.import_module(f"bench.bench_{name}")
        commit = machine().get("commit")  # the code measured: HEAD when the benchmark starts
        dirty = _dirty(out)
        start = time.perf_counter()
        ran[name] = module.run(quick=args.quick)
        ran[name]["bench_wall_s"] = round(time.perf_counter() - start, 2)
        print(f"[bench] {name} done in {ran[name]['bench_wall_s']} s", file=sys.stderr)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info = machine()
        ran[name]["_stamp"] = {"when": now, "commit": commit, "quick": args.quick}
        if dirty:
            ran[name]["_stamp"]["dirty"] = dirty
        results.update(ran)  # saved after each benchmark: an interrupted run keeps what it measured
        results["_meta"] = {"time_utc": now, **info, "load_before": load_before, "load_after": _load(),
                            "quick": args.quick, "last_run": list(ran)}
        summary.refresh(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print_table(ran)
    print_table({"summary": {k: v for k, v in results.get("summary", {}).items() if k != "machine"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
