"""SIGKILL trials of `hieramas train`: kill at a random point, re-run until done, compare with a clean run.

A tiny sim run (hashing embedder, the decision model given, 3 stage-1 steps with a checkpoint
every 2 (so a resume re-does a step), the classifier route with 2 epochs; `backend.sim.latency:
off`) runs as a subprocess in its own folder with relative
paths, so two folders' bundles, metrics and caches compare byte for byte.

`reference(folder)` runs it once uninterrupted and measures where its phases end: cache records
at the end of stage 1 (`stage1_records`) and in all (`records`),
stage-2 epochs logged (`stage2_epochs`). `kill_trial(folder, seed, ref)` draws a phase from
`seed` (`phase=None`: trial `seed` takes PHASES[seed % 3]) and a point in it:
- `stage1`: once k of the first `stage1_records` records are committed;
- `stage2`: once k of its new records are committed (its rollouts), or (half the draws) once k
  of its training epochs are logged;
- `export`: once `topology.json` is written (stage 2 done), after a random 0-40 ms (the bundle
  is written within ~100 ms, so some of these land after it is complete);
SIGKILLs the run there, re-runs the same command to the end and returns the trial's figures:
`repaid` (provider calls of the resumed run minus the records the killed one had not
committed: 0 = nothing paid twice) and `identical` (bundle checksums, the designs the bundle
chooses for a few questions, metrics of every finished step and epoch, cache records: all
equal to the reference's). Shared by test_kill_trials.py and report.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.kill import contents, records

PHASES = ("stage1", "stage2", "export")
DEMO_QUICK = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "demo_quick.yaml"
CONFIG = {"base": str(DEMO_QUICK),
          "task": {"train_size": 6, "val_size": 3, "test_size": 0},
          "pool": {"name": "sim", "decision": "flash-science"},
          "stage1": {"steps": 3, "val_every": 1, "checkpoint_every": 2, "batch_size": 3},
          "topology": {"n_candidates": 3, "classifier": {"epochs": 2, "min_spread": 0.0, "label_rule": "median",
                                                          "samples": 1}},
          "cache": {"path": "cache.sqlite"}, "policy": {"embed_cache": "embeddings"},
          "run": {"out_dir": "run"}, "tracking": {"wandb": "disabled", "progress": False}}
# Metrics that legitimately differ in a resumed run: when the row was written, how much was cached,
# and the client's split of its calls into paid now and answered from the cache (the resumed run's
# client answers from the cache what the killed run paid for; `llm/total_usd` is compared).
VOLATILE = ("time", "llm/cache_hit_rate", "llm/paid_usd", "llm/cached_usd", "llm/paid_calls", "llm/cached_calls")
_PAID = re.compile(r"llm: \d+ LLM calls: (\d+) paid now")


def setup(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def _cmd() -> list[str]:
    return [sys.executable, "-m", "hieramas_gnn.cli", "train", "--config", "train.yaml"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "WANDB_MODE": "disabled"}


def _finish(folder: Path, in_process: bool = False) -> int:
    """Run `train` in `folder` to the end (in a subprocess, or in this process: no import cost);
    the provider calls it paid."""
    if in_process:
        import contextlib
        import io

        from hieramas_gnn.cli import main

        out, cwd = io.StringIO(), Path.cwd()
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(out):
                code = main(_cmd()[3:])
        finally:
            os.chdir(cwd)
        stdout, stderr = out.getvalue(), ""
    else:
        proc = subprocess.run(_cmd(), cwd=folder, env=_env(), capture_output=True, text=True, timeout=600)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    if code != 0:
        raise RuntimeError(f"train exited {code}: {stderr[-2000:]}")
    found = _PAID.search(stdout)
    if found is None:
        raise RuntimeError(f"train printed no 'llm: N LLM calls: P paid now' line: {stdout[-1000:]}")
    return int(found.group(1))


def metrics(run_dir: Path) -> dict[str, dict]:
    """Every (axis, step) row `read_metrics` gives (a re-logged step: its last row), volatile fields dropped."""
    from hieramas_gnn.tracking import read_metrics

    def value(v: Any) -> Any:  # sums over another order of the same terms differ in the last bits
        return round(v, 12) if isinstance(v, float) else v

    return {f"{row.get('axis') or 'stage1/step'}={row['step']}": {k: value(v) for k, v in row.items()
                                                                  if k not in VOLATILE}
            for row in read_metrics(run_dir)}


def designs(bundle: Path) -> list[dict]:
    """The designs `bundle` chooses for a few questions it was not trained on."""
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.tasks import get_task

    chooser, _ = load_chooser(bundle)
    questions = get_task("synthetic").load(None, "test", limit=60)[-4:]
    return [d.to_dict() for d in chooser.designs(questions)]


def final_state(folder: Path) -> dict[str, Any]:
    run = folder / "run"
    return {"bundle": (run / "policy" / "checksums.sha256").read_text(), "designs": designs(run / "policy"),
            "metrics": metrics(run), "topology": json.loads((run / "topology.json").read_text()),
            "cache": contents(folder / "cache.sqlite")}


def reference(folder: Path, in_process: bool = False) -> dict[str, Any]:
    """An uninterrupted run: its final state and where its phases end (module docstring)."""
    import sqlite3

    setup(folder)
    paid = _finish(folder, in_process)
    state = final_state(folder)
    stage1_end = (folder / "run" / "checkpoint.pt").stat().st_mtime  # its last write ends stage 1
    with sqlite3.connect(folder / "cache.sqlite") as conn:
        stage1 = conn.execute("SELECT COUNT(*) FROM records WHERE created_at <= ?", (stage1_end,)).fetchone()[0]
    epochs = sum(k.startswith("stage2/epoch=") for k in state["metrics"])
    return {"state": state, "paid": paid, "records": len(state["cache"]), "stage1_records": stage1,
            "stage2_epochs": epochs}


def _epochs_logged(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_text().count('"axis": "stage2/epoch"')
    except OSError:
        return 0


def kill_point(seed: int, ref: dict[str, Any], phase: str | None = None) -> tuple[str, str, float]:
    """(phase, trigger, threshold): kill once `trigger` ('records', 'epochs', 'topology_ms') reaches it."""
    rng = random.Random(seed)
    phase = phase or PHASES[seed % len(PHASES)]
    if phase == "stage1":
        return phase, "records", rng.randint(1, ref["stage1_records"])
    if phase == "stage2":  # half in its rollouts (data), half in its training epochs
        if rng.random() < 0.5:
            return phase, "records", ref["stage1_records"] + rng.randint(1, ref["records"] - ref["stage1_records"])
        return phase, "epochs", rng.randint(1, ref["stage2_epochs"])
    return phase, "topology_ms", rng.uniform(0, 40)


def _reached(folder: Path, trigger: str, threshold: float, seen: dict) -> bool:
    if trigger == "records":
        return records(folder / "cache.sqlite") >= threshold
    if trigger == "epochs":
        return _epochs_logged(folder / "run") >= threshold
    if "at" not in seen and (folder / "run" / "topology.json").exists():
        seen["at"] = time.monotonic()
    return "at" in seen and time.monotonic() - seen["at"] >= threshold / 1000


def kill(folder: Path, trigger: str, threshold: float) -> dict[str, Any]:
    """Start `train` in a fresh `folder` and SIGKILL it once `trigger` reaches `threshold`."""
    setup(folder)
    proc = subprocess.Popen(_cmd(), cwd=folder, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, seen = time.monotonic() + 600, {}
    while not _reached(folder, trigger, threshold, seen) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return {"trigger": f"{trigger}>={threshold:.4g}", "killed": proc.returncode == -signal.SIGKILL,
            "killed_at_records": records(folder / "cache.sqlite"),
            "bundle_complete_at_kill": (folder / "run" / "policy" / "checksums.sha256").exists()}


def resume(folder: Path, killed: dict[str, Any], ref: dict[str, Any], in_process: bool = False) -> dict[str, Any]:
    """Re-run the killed `folder` to the end and compare its final state with the reference's."""
    paid = _finish(folder, in_process)
    state = final_state(folder)
    differ = [k for k in state if state[k] != ref["state"][k]]
    return {**killed, "repaid": paid - (ref["records"] - killed["killed_at_records"]), "identical": not differ,
            "differ": differ}


def kill_trial(folder: Path, seed: int, ref: dict[str, Any], phase: str | None = None) -> dict[str, Any]:
    """One SIGKILL at a random point of `phase`, then a re-run to the end; the trial's figures."""
    phase, trigger, threshold = kill_point(seed, ref, phase)
    return {"seed": seed, "phase": phase, **resume(folder, kill(folder, trigger, threshold), ref)}
