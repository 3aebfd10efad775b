"""On real outcomes: the learned policy's cost–accuracy frontier on MMLU-Redux, GSM8K and
MATH-L5 replay against every baseline a user would deploy, on held-out questions.

For each task config (`experiments/configs/replay_<task>.yaml`: a 7-model replay pool from cheap
to dear, seeded stratified splits) and each reward point (`linear:0` = accuracy only, then the
HieraMAS reward at several λ), one experiment = `hieramas train` × seeds + evaluation of each
exported bundle next to the baselines (single models, vote, MoA, debate, the fitted router /
cascade / best single, the oracle) on the same test questions; then `hieramas report` over the
folders of each task. Same thing by hand:

    hieramas demo --config experiments/configs/replay_math_l5.yaml --out runs/real/math_l5/lambda3000 \\
        --baselines single vote moa debate router cascade best_single oracle --set reward.cost_lambda=3000
    hieramas report runs/real/math_l5/* --out runs/real/report

    python -m experiments.real_frontier --out runs/real            # all three tasks, 3 seeds
    python -m experiments.real_frontier --tasks math_l5 --points linear:0 hieramas:3000 --seeds 1

Every experiment resumes from its folder (training and the rollout cache), so a re-run after a
stop or with a new reward point pays only for what is new.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

TASKS = ("mmlu_redux", "gsm8k", "math_l5")
POINTS = ("linear:0", "hieramas:30", "hieramas:100", "hieramas:300", "hieramas:3000", "hieramas:30000",
          "exp:100", "exp:300", "exp:1000", "exp:10000")  # the HieraMAS shape floors a solved answer at 0.5: `exp` reaches the cheap end
BASELINES = ("single", "vote", "moa", "debate", "router", "cascade", "best_single", "oracle")


def point_overrides(point: str) -> tuple[str, list[str]]:
    """`shape:lambda` -> (folder name, config overrides)."""
    shape, _, lam = point.partition(":")
    if shape not in ("linear", "exp", "hieramas") or not lam:
        raise SystemExit(f"--points: expected shape:lambda (e.g. hieramas:3000), got {point!r}")
    name = f"lambda{lam}" if shape == "hieramas" else f"{shape}{lam}"
    return name, [f"reward.shape={shape}", f"reward.cost_lambda={float(lam)}"]


def main(argv: list[str] | None = None) -> int:
    from hieramas_gnn.eval.experiment import CONFIGS, run_experiment
    from hieramas_gnn.eval.frontier import report
    from hieramas_gnn.paths import ensure_offline_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/real")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--points", nargs="+", default=list(POINTS), help="reward points shape:lambda")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="extra config overrides for every experiment (an ablation)")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    out = Path(args.out)
    for task in args.tasks:
        folders = []
        for point in args.points:
            name, overrides = point_overrides(point)
            folder = out / task / name
            t0 = time.perf_counter()
            res = run_experiment(CONFIGS / f"replay_{task}.yaml", folder, seeds=args.seeds, baselines=BASELINES,
                                 overrides=["tracking.wandb=disabled", "tracking.progress=false",
                                            f"cache.path={out / task / 'rollouts.sqlite'}",
                                            f"policy.embed_cache={out / 'embeddings'}", *overrides, *args.overrides],
                                 title=f"real frontier: {task} {point}", log=lambda line: print(f"[{task} {point}] {line}"))
            learned = next(r for r in res.rows if r["method"] == "hieramas")
            print(f"[{task} {point}] hieramas {learned['accuracy']:.3f} ± {learned['accuracy_std']:.3f} "
                  f"at ${learned['cost_usd']:.2e}/query ({time.perf_counter() - t0:.0f}s)")
            folders.append(folder)
        report(folders, out / task / "report")
        print(f"wrote {out / task / 'report' / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
