"""Controlled credit-assignment experiment: seeds x baselines -> does the selector find each
role's best model?

Pool (`pool.yaml`, simulated): `big` is strong in every role and ~100x the price; each cheap
specialist is strong in exactly one role. Under the cost-aware reward of `config.yaml` the
optimum for every role is its own specialist. For each seed and baseline this trains stage 1
with `hieramas train`'s code path, then reads the greedy policy on the validation queries: a
role is *found* when its greedy proposer is its specialist on more than half of the queries;
a seed *succeeds* when every role is found.

    python experiments/credit_assignment/run.py --seeds 8 [--steps 30] [--out DIR] [key=value ...]

Writes `results.json` and `results.md` next to this file (or in --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEST = {"solver": "spec-solver", "verifier": "spec-verifier", "generalist": "spec-generalist"}
BASELINES = ("none", "moving_average", "counterfactual")


def found_roles(setup, dags) -> dict[str, float]:
    """Per role: fraction of validation queries whose greedy proposer is the role's specialist."""
    import torch

    from hieramas_gnn.policy.sample import sample

    with torch.no_grad():
        batch = setup.builder.batch(list(setup.val), dags)
        designs = sample(setup.policy, batch, decision=setup.decision, mode="mixture", dags=dags,
                         greedy=True).designs
    out = {}
    for n, role in enumerate(designs[0].roles):
        hits = [d.mixtures[n] is not None and d.mixtures[n].proposers[0] == BEST[role] for d in designs]
        out[role] = sum(hits) / len(hits)
    return out


def run_one(seed: int, baseline: str, out: Path, overrides: list[str], label: str = "") -> dict:
    from hieramas_gnn.config import load_config
    from hieramas_gnn.tracking import Tracker
    from hieramas_gnn.build import build_training
    from hieramas_gnn.train.stage1 import Stage1Trainer

    cfg = load_config(HERE / "config.yaml", [
        f"run.seed={seed}", f"credit.baseline={baseline}", f"run.name={label or baseline}",
        f"run.out_dir={out}/runs/{{name}}__{{seed}}", f"cache.path={out}/rollouts.sqlite", *overrides])
    setup = build_training(cfg)
    t0 = time.time()
    with Tracker(cfg) as tracker:
        trainer = Stage1Trainer(cfg, setup, tracker)
        trainer.maybe_resume()
        result = trainer.run()
    roles = found_roles(setup, [trainer.dags[0]] * len(setup.val))  # the training topology (parallel: no edges)
    rollouts = sum(h["train/rollouts"] for h in result.history)
    return {"seed": seed, "baseline": baseline, "variant": label or baseline, "roles": roles,
            "success": all(v > 0.5 for v in roles.values()),
            "final_val_reward": result.history[-1].get("eval/val_reward"), "rollouts": rollouts,
            "seconds": round(time.time() - t0, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| baseline (variant) | seeds | success rate | roles found (mean) | final val reward (mean ± std) | rollouts / run |",
             "|---|---|---|---|---|---|"]
    variants = list(dict.fromkeys(r.get("variant", r["baseline"]) for r in rows))
    for b in variants:
        rs = [r for r in rows if r.get("variant", r["baseline"]) == b]
        succ = sum(r["success"] for r in rs) / len(rs)
        found = statistics.mean(sum(v > 0.5 for v in r["roles"].values()) / len(r["roles"]) for r in rs)
        vals = [r["final_val_reward"] for r in rs if r["final_val_reward"] is not None]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        lines.append(f"| {b} | {len(rs)} | {succ:.0%} | {found:.0%} | {statistics.mean(vals):.3f} ± {sd:.3f} | "
                     f"{statistics.mean(r['rollouts'] for r in rs):.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=BASELINES)
    p.add_argument("--out", default=str(HERE))
    p.add_argument("--label", default="", help="name of this variant in the table (e.g. none-equal-rollouts)")
    p.add_argument("--summarize", metavar="LOG", help="only rebuild the table from logs (comma-separated) "
                   "of this script's JSON lines (e.g. an interrupted run, or several variants)")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. stage1.steps=30")
    args = p.parse_args()
    if args.summarize:
        rows = [json.loads(x) for f in args.summarize.split(",")
                for x in Path(f).read_text().splitlines() if x.startswith("{")]
        write(Path(args.out), rows, args.overrides)
        return
    from hieramas_gnn.paths import ensure_offline_defaults

    ensure_offline_defaults()
    out = Path(args.out)
    rows = []
    for seed in range(args.seeds):
        for b in args.baselines:
            rows.append(run_one(seed, b, out, args.overrides, args.label))
            print(json.dumps(rows[-1]), flush=True)
    write(out, rows, args.overrides)


def write(out: Path, rows: list[dict], overrides: list[str]) -> None:
    """results.json (every run) and results.md (the table) in `out`."""
    (out / "results.json").write_text(json.dumps({"config": "experiments/credit_assignment/config.yaml",
                                                  "overrides": overrides, "runs": rows}, indent=1))
    md = f"# Credit assignment: seeds x baseline\n\n{table(rows)}\n"
    (out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
