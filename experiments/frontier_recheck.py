"""Re-run a sample of the committed real-outcome frontier points and compare each with its
committed number: did a code change move the frontier?

For each task (GSM8K, MMLU-Redux, MATH-L5 replay) three points of the committed frontier
(`experiments/results/real_frontier/<task>/report.json`) — the cheap end, the middle and the
accuracy end by default — are trained again (one seed, seed 0: every committed point has a
standard deviation of 0.000 over its three seeds) with the same config and overrides the committed
label names, evaluated on the same held-out questions with the single-model baselines, and
compared: the learned policy's accuracy and $/query against the committed ones, and the single
models' accuracy as a check that the replayed outcomes did not change either.

    python -m experiments.frontier_recheck --out runs/recheck
    python -m experiments.frontier_recheck --tasks gsm8k --points "exp, lambda=10000.0"

Writes `recheck.json` and `recheck.md` into `--results` (default
`experiments/results/real_frontier/`). Each experiment resumes from its folder, so a stopped
re-check re-run pays only for what is left.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

TASKS = ("gsm8k", "mmlu_redux", "math_l5")
# (cheap end, middle, accuracy end) of each committed frontier, as labelled in its report.json
DEFAULT_POINTS = {
    "gsm8k": ("exp, lambda=10000.0", "hieramas, lambda=30.0", "linear, lambda=0.0"),
    "mmlu_redux": ("hieramas, lambda=3000.0", "hieramas, lambda=300.0",
                   "linear, lambda=0.0 [policy.arch.plurality=true, policy.arch.proposer_slots=7, policy.arch.stop_per_slot=true]"),
    "math_l5": ("exp, lambda=1000.0", "hieramas, lambda=300.0", "linear, lambda=0.0"),
}
LABEL = re.compile(r"^(linear|exp|hieramas), lambda=([0-9.eE+-]+)(?: \[(.*)\])?$")
RESULTS = Path(__file__).resolve().parent / "results" / "real_frontier"


def label_overrides(label: str) -> tuple[str, list[str]]:
    """A committed frontier label -> (folder name, config overrides that reproduce it)."""
    m = LABEL.match(label.strip())
    if not m:
        raise SystemExit(f"--points: {label!r} is not a frontier label such as 'hieramas, lambda=300.0' "
                         "or 'linear, lambda=0.0 [policy.arch.plurality=true]'")
    shape, lam, extra = m.group(1), float(m.group(2)), m.group(3)
    sets = [s.strip() for s in extra.split(",")] if extra else []
    name = f"{shape}{lam:g}" + ("_" + "_".join(s.split("=")[0].split(".")[-1] for s in sets) if sets else "")
    return name, [f"reward.shape={shape}", f"reward.cost_lambda={lam}", *sets]


def committed_rows(task: str) -> dict:
    """The committed report of `task`: {'n', 'learned': {label: row}, 'baselines': {method: row}}."""
    path = RESULTS / task / "report.json"
    if not path.exists():
        raise SystemExit(f"no committed frontier for {task!r}: {path} is missing")
    (entry,) = json.loads(path.read_text()).values()
    return {"n": entry["n"], "learned": {r["label"]: r for r in entry["learned"]},
            "baselines": {r["method"]: r for r in entry["baselines"] if r["method"].startswith("single:")}}


def compare(task: str, label: str, committed: dict, rows: list[dict], cpu_s: float) -> dict:
    """One re-run point against its committed row (accuracy to 4 digits, cost to 1e-9 relative)."""
    mine = next(r for r in rows if r["method"] == "hieramas")
    ref = committed["learned"][label]
    singles = {r["method"]: round(r["accuracy"], 4) for r in rows if r["method"].startswith("single:")}
    single_ref = {m: round(r["accuracy"], 4) for m, r in committed["baselines"].items()}
    moved = sorted(m for m in singles if m in single_ref and singles[m] != single_ref[m])
    return {"task": task, "point": label,
            "committed": {"accuracy": round(ref["accuracy"], 4), "cost_usd": ref["cost_usd"]},
            "rerun": {"accuracy": round(mine["accuracy"], 4), "cost_usd": mine["cost_usd"]},
            "equal": round(mine["accuracy"], 4) == round(ref["accuracy"], 4)
                     and abs(mine["cost_usd"] - ref["cost_usd"]) <= 1e-9 * max(ref["cost_usd"], 1e-12),
            "single_models_equal": not moved, "single_models_moved": moved,
            "train_eval_cpu_s": round(cpu_s, 1)}


def write(results: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "recheck.json").write_text(json.dumps({"points": results}, indent=1) + "\n")
    lines = ["# Real frontier re-check", "",
             "A sample of the committed frontier points trained again (seed 0) with the code of this commit",
             "and evaluated on the same held-out questions (`python -m experiments.frontier_recheck`).", "",
             "| task | point | committed acc @ $/query | re-run acc @ $/query | equal | single models equal | CPU s |",
             "|---|---|---|---|---|---|---:|"]
    for r in results:
        c, n = r["committed"], r["rerun"]
        lines.append(f"| {r['task']} | {r['point']} | {c['accuracy']:.4f} @ {c['cost_usd']:.3e} | "
                     f"{n['accuracy']:.4f} @ {n['cost_usd']:.3e} | {'yes' if r['equal'] else '**no**'} | "
                     f"{'yes' if r['single_models_equal'] else 'moved: ' + ', '.join(r['single_models_moved'])} | "
                     f"{r['train_eval_cpu_s']:.0f} |")
    (out / "recheck.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    from hieramas_gnn.eval.experiment import CONFIGS, run_experiment
    from hieramas_gnn.paths import ensure_offline_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/recheck", help="run folders and caches (resumable)")
    p.add_argument("--results", default=str(RESULTS), help="where recheck.json / recheck.md go")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--points", nargs="+", default=None,
                   help="committed labels to re-run (default: the three of each task in DEFAULT_POINTS)")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    out, results = Path(args.out), []
    for task in args.tasks:
        committed = committed_rows(task)
        for label in args.points or DEFAULT_POINTS[task]:
            if label not in committed["learned"]:
                raise SystemExit(f"--points: {label!r} is not a point of the committed {task} frontier; "
                                 f"its points are: {sorted(committed['learned'])}")
            name, overrides = label_overrides(label)
            cpu0 = time.process_time()
            res = run_experiment(CONFIGS / f"replay_{task}.yaml", out / task / name, seeds=1, baselines=("single",),
                                 overrides=["tracking.wandb=disabled", "tracking.progress=false",
                                            f"cache.path={out / task / 'rollouts.sqlite'}",
                                            f"policy.embed_cache={out / 'embeddings'}", *overrides],
                                 title=f"frontier re-check: {task} {label}",
                                 log=lambda line, t=task: print(f"[{t}] {line}"))
            row = compare(task, label, committed, res.rows, time.process_time() - cpu0)
            print(f"[{task}] {label}: committed {row['committed']} re-run {row['rerun']} equal={row['equal']}",
                  flush=True)
            results.append(row)
            write(results, Path(args.results))
    return 0 if all(r["equal"] and r["single_models_equal"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
