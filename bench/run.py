"""Benchmark runner: `python -m bench.run --out bench/results.json [--only NAME] [--quick]`.

Discovers every `bench/bench_<name>.py` module exposing `run(quick: bool) -> dict`, runs them (or
the ones named by `--only`, repeatable), prints one table of the figures, and writes them to the
results JSON under each benchmark's name, beside a `_meta` entry (time, machine, quick flag).
Results of benchmarks that were not run this time are kept, so `--only` updates one entry.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(BENCH_DIR / "results.json"), help="results JSON to update")
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
    for name in selected:
        module = importlib.import_module(f"bench.bench_{name}")
        start = time.perf_counter()
        ran[name] = module.run(quick=args.quick)
        ran[name]["bench_wall_s"] = round(time.perf_counter() - start, 2)
        print(f"[bench] {name} done in {ran[name]['bench_wall_s']} s", file=sys.stderr)
    results.update(ran)
    results["_meta"] = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "python": platform.python_version(), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "quick": args.quick, "last_run": selected}
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print_table(ran)
    return 0


if __name__ == "__main__":
    sys.exit(main())
