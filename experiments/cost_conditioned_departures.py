"""Where a trained cost-conditioned bundle departs from its searched designs, and what it gains.

After `python -m experiments.cost_conditioned --task T ...` (its run folders under `--out`): per
grid λ of the conditioned run (seed `--seed`), on the validation and the test questions, the
number of questions whose design differs from the design searched at that λ
(`design_search_grid.json`) and the paired gain in reward at that λ (mean ± 1 SE over the
questions; the run's reward shape).

    python -m experiments.cost_conditioned_departures --task math_l5 --range 30 3000 \
        --set stage1.warm_start_models=5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from hieramas_gnn.build import build_runner, load_models, load_questions, load_roles
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval.experiment import CONFIGS
    from hieramas_gnn.mas.design import Design
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.rewards import Reward

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="math_l5")
    p.add_argument("--range", nargs=2, type=float, default=[30.0, 3000.0], help="the conditioned run's λ range")
    p.add_argument("--grid", type=int, default=5)
    p.add_argument("--shape", default="hieramas")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/cost_conditioned")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    out = Path(args.out) / args.task
    lo, hi = args.range
    cfg = load_config(CONFIGS / f"replay_{args.task}.yaml", [
        "tracking.wandb=disabled", "tracking.progress=false", f"cache.path={out / 'rollouts.sqlite'}",
        f"policy.embed_cache={Path(args.out) / 'embeddings'}", f"reward.shape={args.shape}", *args.overrides,
        f"run.seed={args.seed}", f"reward.cost_lambda={lo}", f"reward.cost_lambda_range=[{lo}, {hi}]",
        f"reward.cost_lambda_grid={args.grid}", f"run.out_dir={out / 'conditioned' / f'seed{args.seed}'}"])
    _train, val, test, task = load_questions(cfg)
    roleset, _ = load_roles(cfg, task)
    pool, _ = load_models(cfg)
    runner = build_runner(cfg, task, roleset, pool)
    chooser, _ = load_chooser(Path(cfg.run.dir) / "policy", pool=pool, embed_cache=cfg.policy.embed_cache)
    grid = json.loads((Path(cfg.run.dir) / "design_search_grid.json").read_text())["points"]
    for split, questions in (("validation", val), ("test", test)):
        for point in grid:
            lam = point["cost_lambda"]
            searched = Design.from_dict(point["design_json"])
            chosen = chooser.designs(questions, lam)
            reward = Reward(args.shape, lam).of_trace
            mine = np.array([reward(t) for t in runner.run(list(zip(chosen, questions)))])
            base = np.array([reward(t) for t in runner.run([(searched, q) for q in questions])])
            gain = mine - base
            print(f"{args.task} {split} λ={lam:g}: {sum(d != searched for d in chosen)}/{len(questions)} designs "
                  f"differ from the searched one; reward gain {gain.mean():+.4f} ± "
                  f"{gain.std(ddof=1) / np.sqrt(len(gain)):.4f} (1 SE)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
