"""Measure the figures of docs/RELIABILITY.md: `python -m tests.reliability.report --json OUT`.

Sections (each re-run from scratch, nothing cached):
- `bad_inputs`: every case of bad_inputs.py (CLI in-process; train/run configs in subprocesses)
  by outcome: clear / traceback / wrong_exit / wrote / slow / hang, and the cases that were not clear;
- `sandbox`: every hostile program of hostile.py under each isolation mode available, plus
  `--fuzz` generated ones: contained or escaped; forged HumanEval passes: held or forged;
- `kill_trials`: `--kill-trials` SIGKILLs of `collect` at random points: re-paid calls, identical caches;
- `train_kill_trials`: `--train-kill-trials` SIGKILLs of `train` spread over stage 1, stage 2 and
  export (kill_train.py): re-paid calls, identical final state (bundle, designs, metrics, cache);
- `secrets`: collect and baselines, then train (wandb offline), export and serve, against a
  provider that echoes the key; leaks found in files and on the console;
- `integrity`: a flipped answer, a truncated file, a foreign database: detected by `cache verify`
  and `cache stats`, nothing written;
- `hostile_inputs`: every row of hostile_inputs.py (data loss, bundle and cache security, money,
  hangs, tracebacks, misleading errors) by outcome: held, or the class of failure it showed.
Options: --kill-trials N (default 3), --train-kill-trials N (default 3), --fuzz N (default 100),
--skip SECTION (repeatable).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any


def bad_inputs() -> dict[str, Any]:
    from tests.reliability.bad_inputs import all_cases, run_case

    outcomes = [run_case(c, Path(tempfile.mkdtemp(prefix="hx-bad-"))) for c in all_cases()]
    by_surface: dict[str, Counter] = {}
    for o in outcomes:
        by_surface.setdefault(o.case.split(":")[0], Counter())[o.kind] += 1
    return {"tried": len(outcomes), "outcomes": dict(Counter(o.kind for o in outcomes)),
            "by_surface": {k: dict(v) for k, v in by_surface.items()},
            "not_clear": [{"case": o.case, "kind": o.kind, "exit": o.code, "message": o.message} for o in outcomes
                          if o.kind != "clear"],
            "max_seconds": round(max(o.seconds for o in outcomes), 2)}


def sandbox(fuzz: int) -> dict[str, Any]:
    from hieramas_gnn.tasks.humaneval import HumanEvalTask
    from hieramas_gnn.tasks.sandbox import namespaces_available, run_program
    from tests.reliability.hostile import ESCAPES, FORGERIES, add_question, fingerprint, make_target, random_program

    modes = ["hook"] + (["namespaces"] if namespaces_available() else [])
    escaped, tried = [], 0

    def attempt(code_for, mode: str, label: str) -> None:
        nonlocal tried
        outside = Path(tempfile.mkdtemp(prefix="hx-host-")) / "outside"
        target, tag = make_target(outside), "hx-" + uuid.uuid4().hex[:10]
        before = fingerprint(target, outside, tag)
        res = run_program(code_for(str(target), str(outside), tag), timeout_s=10, isolation=mode)
        tried += 1
        if fingerprint(target, outside, tag) != before or "parent-secret" in res.stdout:
            escaped.append(f"{mode}:{label}")

    os.environ["HIERAMAS_REPORT_PARENT_TOKEN"] = "parent-secret-value"
    for mode in modes:
        for name, tpl in ESCAPES.items():
            attempt(lambda t, o, g, tpl=tpl: tpl.format(target=t, outside=o, tag=g), mode, name)
    rng = random.Random(0)
    for i in range(fuzz):
        attempt(lambda t, o, g: random_program(rng, o, t, g), modes[i % len(modes)], f"fuzz{i}")
    task, q = HumanEvalTask(timeout_s=10), add_question()
    grades = task.grade(list(FORGERIES.values()), [q] * len(FORGERIES))
    return {"isolation_modes": modes, "hostile_programs": len(ESCAPES), "fuzzed_programs": fuzz,
            "runs": tried, "contained": tried - len(escaped), "escaped": escaped,
            "forgery_attempts": len(FORGERIES), "forged_passes": [n for n, g in zip(FORGERIES, grades) if g],
            "canonical_still_passes": task.grade([q.gold], [q]) == [True]}


def kill_trials(n: int) -> dict[str, Any]:
    from tests.reliability.kill import kill_trial, reference

    root = Path(tempfile.mkdtemp(prefix="hx-kill-"))
    expected = reference(root / "reference")
    trials = [kill_trial(root / f"t{i}", seed=i, expected=expected) for i in range(n)]
    return {"trials": n, "killed": sum(t["killed"] for t in trials), "repaid_calls": sum(t["repaid"] for t in trials),
            "identical_final_cache": sum(t["identical"] for t in trials), "detail": trials}


def train_kill_trials(n: int) -> dict[str, Any]:
    from tests.reliability.kill_train import kill_trial, reference

    root = Path(tempfile.mkdtemp(prefix="hx-trainkill-"))
    ref = reference(root / "reference")
    trials = [kill_trial(root / f"t{i}", seed=i, ref=ref) for i in range(n)]
    return {"trials": n, "killed": sum(t["killed"] for t in trials), "repaid_calls": sum(t["repaid"] for t in trials),
            "identical_final_state": sum(t["identical"] for t in trials),
            "by_phase": dict(Counter(t["phase"] for t in trials)),
            "bundle_complete_at_kill": sum(t["bundle_complete_at_kill"] for t in trials),
            "reference": {k: ref[k] for k in ("records", "stage1_records", "stage2_epochs")}, "detail": trials}


def secrets() -> dict[str, Any]:
    import yaml

    from hieramas_gnn.cli import main
    from tests.reliability.secrets_scan import POOL_MODEL_EXTRA, files_scanned, install_echoing_provider, leaks

    folder = Path(tempfile.mkdtemp(prefix="hx-secrets-"))
    pool = {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6,
                                     "output_cost_per_token": 2e-6, "extra": POOL_MODEL_EXTRA}]}
    (folder / "pool.yaml").write_text(yaml.safe_dump(pool))
    cfg = {"task": "synthetic", "limit": 3, "pool": "pool.yaml", "designs": ["single"], "cache": "cache.sqlite",
           "out": "traces.jsonl", "client": {"max_retries": 0}}
    (folder / "collect.yaml").write_text(yaml.safe_dump(cfg))
    console = io.StringIO()
    undo = install_echoing_provider(os.environ.__setitem__, refuse=lambda model: True)
    try:
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
            codes = [main(["collect", "--config", str(folder / "collect.yaml"), "--quiet",
                           "--summary", str(folder / "summary.json")])]
            codes.append(main(["baselines", "--task", "synthetic", "--pool", str(folder / "pool.yaml"), "--methods", "single",
                  "--limit", "3", "--json", str(folder / "baselines.json")]))
    finally:
        undo()
    summary = json.loads((folder / "summary.json").read_text())
    found = leaks(folder, console.getvalue())
    pipeline = _secrets_pipeline()
    return {"commands": ["collect", "baselines", "train", "export", "serve"], "exit_codes": codes + pipeline["codes"],
            "files_scanned": files_scanned(folder) + pipeline["files_scanned"], "console_scanned": True,
            "failures_seen": summary["failed"], "first_failure": summary["first_failure"],
            "serve_statuses": pipeline["serve_statuses"], "leaks": found + pipeline["leaks"]}


def _secrets_pipeline() -> dict[str, Any]:
    """train + export + serve (`secrets_scan.train_export_serve`), scanned the same way."""
    from tests.reliability.secrets_scan import files_scanned, leaks, train_export_serve

    folder = Path(tempfile.mkdtemp(prefix="hx-secrets-pipeline-"))
    console, codes, served = train_export_serve(folder)
    return {"codes": [codes["train"], codes["export"]], "files_scanned": files_scanned(folder),
            "serve_statuses": [status for status, _ in served], "leaks": leaks(folder, console)}


def integrity() -> dict[str, Any]:
    from hieramas_gnn.cli import main
    from tests.reliability.hostile import make_target

    folder = Path(tempfile.mkdtemp(prefix="hx-integrity-"))
    results = {}
    flipped = make_target(folder / "flip")
    with contextlib.closing(sqlite3.connect(flipped)) as conn, conn:
        conn.execute("UPDATE records SET text = 'the answeR'")
    truncated = make_target(folder / "trunc")
    truncated.write_bytes(truncated.read_bytes()[:4100])
    foreign = folder / "app.db"
    with contextlib.closing(sqlite3.connect(foreign)) as conn, conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    sink = io.StringIO()
    for name, path in (("bit_flip", flipped), ("truncated", truncated), ("foreign_sqlite", foreign)):
        before = path.read_bytes()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            codes = [main(["cache", a, "--cache", str(path)]) for a in ("verify", "stats")]
        results[name] = {"verify_exit": codes[0], "stats_exit": codes[1], "unchanged": path.read_bytes() == before}
    results["detected"] = sum(r["verify_exit"] != 0 for r in results.values() if isinstance(r, dict))
    results["detected_by_stats"] = sum(r["stats_exit"] != 0 for r in results.values() if isinstance(r, dict))
    return results


def hostile_inputs() -> dict[str, Any]:
    from tests.reliability.hostile_inputs import CLASSES, ROWS, run_row

    verdicts = [run_row(r, Path(tempfile.mkdtemp(prefix="hx-hostile-"))) for r in ROWS]
    counts = Counter(v.outcome for v in verdicts)
    return {"tried": len(verdicts), "held": counts["held"], **{k: counts[k] for k in CLASSES},
            "by_class_guarded": dict(Counter(v.guards for v in verdicts)),
            "not_held": [{"row": v.row, "outcome": v.outcome, "detail": v.detail[:300]} for v in verdicts
                         if v.outcome != "held"],
            "max_seconds": round(max(v.seconds for v in verdicts), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="write the figures here")
    ap.add_argument("--kill-trials", type=int, default=3)
    ap.add_argument("--train-kill-trials", type=int, default=3)
    ap.add_argument("--fuzz", type=int, default=100)
    ap.add_argument("--skip", action="append", default=[], choices=["bad_inputs", "sandbox", "kill_trials", "train_kill_trials", "secrets",
                                                                         "integrity", "hostile_inputs"])
    argv = sys.argv[1:] if argv is None else argv  # recorded in _meta.command
    args = ap.parse_args(argv)
    sections = {"bad_inputs": bad_inputs, "sandbox": lambda: sandbox(args.fuzz),
                "kill_trials": lambda: kill_trials(args.kill_trials),
                "train_kill_trials": lambda: train_kill_trials(args.train_kill_trials), "secrets": secrets,
                "integrity": integrity, "hostile_inputs": hostile_inputs}
    report: dict[str, Any] = {"_meta": {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
                                        "cpus": os.cpu_count(), "command": "python -m tests.reliability.report " + " ".join(argv)}}
    for name, fn in sections.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        report[name] = fn()
        report[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {json.dumps({k: v for k, v in report[name].items() if k not in ('detail', 'by_surface')})[:400]}",
              flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
