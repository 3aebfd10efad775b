"""One cost-conditioned bundle against one dedicated policy per cost weight, on real-outcome replay.

For a task (`experiments/configs/replay_<task>.yaml`) and a reward shape, the dedicated side is
the real frontier's recipe (`experiments/real_frontier.py`): one `hieramas train` per λ point
(`reward.cost_lambda=λ`). The conditioned side is ONE `hieramas train` with
`reward.cost_lambda_range=[min, max]` of the points (`reward.cost_lambda_grid` log-spaced λ, the
design search run at each), evaluated at every point with `--cost-lambda`. Both are evaluated on
the same held-out test questions; per point the accuracy gap conditioned − dedicated is paired over
the questions (`stats.paired_gap`). Training CPU is `time.process_time()` of each training (all
threads of this process), recorded once in the run folder (`cpu_s.json`), so a resumed experiment
reports the CPU of the run that trained.

    python -m experiments.cost_conditioned --task math_l5 --seeds 1
    python -m experiments.cost_conditioned --task gsm8k --points 30 100 300 3000 30000

Writes `experiments/results/cost_conditioned/<task>.json`:
`{"points": [{"point", "dedicated": {"accuracy", "cost_usd"}, "conditioned": {"accuracy",
"cost_usd"}, "within_2se"}], "cpu_s": {"dedicated", "conditioned"}}` (`within_2se`: the
conditioned accuracy is not below the dedicated one by more than two paired standard errors; means
over seeds), and beside it `<task>.md` with the gaps, the cost ratios and the designs chosen.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TASKS = ("math_l5", "gsm8k", "mmlu_redux")
POINTS = (30.0, 100.0, 300.0, 3000.0)
RESULTS = Path(__file__).resolve().parent / "results" / "cost_conditioned"


def _train(cfg) -> float:
    """Train (or resume) one run; the CPU seconds of the training that made it (`cpu_s.json`)."""
    from hieramas_gnn.train.pipeline import train_pipeline

    record = Path(cfg.run.dir) / "cpu_s.json"
    done = json.loads(record.read_text())["cpu_s"] if record.exists() else None
    t0 = time.process_time()
    train_pipeline(cfg)
    spent = time.process_time() - t0
    if done is None:
        record.write_text(json.dumps({"cpu_s": spent}) + "\n")
        done = spent
    return float(done)


def _evaluate(chooser, questions, runner, cost_lambda=None):
    """(per-question correct [Q], cost [Q], design summaries) of a chooser on `questions`."""
    import numpy as np

    designs = chooser.designs(questions) if cost_lambda is None else chooser.designs(questions, cost_lambda)
    traces = runner.run(list(zip(designs, questions)))
    correct = np.array([float(bool(t.correct) and not t.failed) for t in traces])
    cost = np.array([float(t.cost_usd) for t in traces])
    return correct, cost, [d.summary() for d in designs]


def main(argv: list[str] | None = None) -> int:
    from collections import Counter

    import numpy as np

    from hieramas_gnn import stats
    from hieramas_gnn.build import build_runner, load_models, load_questions, load_roles
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.eval.experiment import CONFIGS
    from hieramas_gnn.paths import ensure_offline_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="math_l5", choices=TASKS)
    p.add_argument("--points", nargs="+", type=float, default=list(POINTS), help="λ points (1/USD)")
    p.add_argument("--shape", default="hieramas", choices=("hieramas", "exp", "linear"))
    p.add_argument("--grid", type=int, default=5, help="reward.cost_lambda_grid of the conditioned run")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out", default="runs/cost_conditioned")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    from hieramas_gnn.config import load_config

    points = sorted(args.points)
    out = Path(args.out) / args.task
    common = ["tracking.wandb=disabled", "tracking.progress=false", f"cache.path={out / 'rollouts.sqlite'}",
              f"policy.embed_cache={Path(args.out) / 'embeddings'}", f"reward.shape={args.shape}", *args.overrides]
    config = CONFIGS / f"replay_{args.task}.yaml"
    cpu = {"dedicated": 0.0, "conditioned": 0.0}
    per_point: dict[float, dict[str, list]] = {lam: {"ded": [], "cond": []} for lam in points}
    designs: dict[str, Counter] = {}
    for seed in range(args.seeds):
        ded_cfgs = {lam: load_config(config, [*common, f"run.seed={seed}", f"reward.cost_lambda={lam}",
                                              f"run.out_dir={out / f'dedicated_{lam:g}' / f'seed{seed}'}"])
                    for lam in points}
        cond_cfg = load_config(config, [*common, f"run.seed={seed}", f"reward.cost_lambda={points[0]}",
                                        f"reward.cost_lambda_range=[{points[0]}, {points[-1]}]",
                                        f"reward.cost_lambda_grid={args.grid}",
                                        f"run.out_dir={out / 'conditioned' / f'seed{seed}'}"])
        cpu["conditioned"] += _train(cond_cfg)
        print(f"[{args.task} seed {seed}] conditioned trained (cpu {cpu['conditioned']:.0f}s)", flush=True)
        for lam, cfg in ded_cfgs.items():
            cpu["dedicated"] += _train(cfg)
            print(f"[{args.task} seed {seed}] dedicated λ={lam:g} trained (cpu so far {cpu['dedicated']:.0f}s)", flush=True)
        _train_q, _val_q, test, task = load_questions(cond_cfg)
        roleset, _roles = load_roles(cond_cfg, task)
        pool, _ = load_models(cond_cfg)
        runner = build_runner(cond_cfg, task, roleset, pool)
        cond, _ = load_chooser(Path(cond_cfg.run.dir) / "policy", pool=pool, embed_cache=cond_cfg.policy.embed_cache)
        for lam, cfg in ded_cfgs.items():
            ded, _ = load_chooser(Path(cfg.run.dir) / "policy", pool=pool, embed_cache=cfg.policy.embed_cache)
            d = _evaluate(ded, test, runner)
            c = _evaluate(cond, test, runner, lam)
            per_point[lam]["ded"].append(d[:2])
            per_point[lam]["cond"].append(c[:2])
            designs.setdefault(f"dedicated λ={lam:g}", Counter()).update(d[2])
            designs.setdefault(f"conditioned λ={lam:g}", Counter()).update(c[2])
    rows, lines = [], []
    for lam in points:
        ded_c = np.concatenate([x[0] for x in per_point[lam]["ded"]])
        ded_cost = np.concatenate([x[1] for x in per_point[lam]["ded"]])
        cond_c = np.concatenate([x[0] for x in per_point[lam]["cond"]])
        cond_cost = np.concatenate([x[1] for x in per_point[lam]["cond"]])
        gap = stats.paired_gap(cond_c, ded_c)
        within = bool(gap.gap >= -2 * gap.se) if np.isfinite(gap.se) else bool(gap.gap >= 0)
        ratio = float(cond_cost.mean() / ded_cost.mean()) if ded_cost.mean() > 0 else float("nan")
        rows.append({"point": f"{args.shape}:{lam:g}",
                     "dedicated": {"accuracy": float(ded_c.mean()), "cost_usd": float(ded_cost.mean())},
                     "conditioned": {"accuracy": float(cond_c.mean()), "cost_usd": float(cond_cost.mean())},
                     "within_2se": within})
        lines.append(f"| {args.shape}:{lam:g} | {ded_c.mean():.3f} @ {ded_cost.mean():.2e} | {cond_c.mean():.3f} @ "
                     f"{cond_cost.mean():.2e} | {gap.gap:+.3f} ± {2 * gap.se:.3f} | {ratio:.2f} | "
                     f"{'yes' if within else 'NO'} | {'yes' if within and ratio <= 1.1 else 'NO'} |")
    result = {"points": rows, "cpu_s": {k: round(v, 1) for k, v in cpu.items()}}
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.task}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# Cost-conditioned vs dedicated policies: {args.task} replay", "",
          f"Command: `python -m experiments.cost_conditioned --task {args.task} --points "
          f"{' '.join(f'{x:g}' for x in points)} --shape {args.shape} --grid {args.grid} --seeds {args.seeds}`"
          + (f" `--set {' '.join(args.overrides)}`" if args.overrides else ""), "",
          f"{len(test)} held-out test questions × {args.seeds} seed(s); gap = conditioned − dedicated accuracy, paired "
          "over the questions (± 2 SE); cost ratio = conditioned / dedicated $/query.", "",
          "| point | dedicated acc @ $/query | conditioned acc @ $/query | gap ± 2 SE | cost ratio | within 2 SE | "
          "holds (within 2 SE, ≤ 1.1× cost) |", "|---|---|---|---|---:|---|---|", *lines, "",
          f"Training CPU: dedicated {cpu['dedicated']:.0f} s ({len(points)} runs × {args.seeds} seed(s)), "
          f"conditioned {cpu['conditioned']:.0f} s ({args.seeds} run(s)): "
          f"{cpu['conditioned'] / max(cpu['dedicated'], 1e-9):.2f} of the dedicated total.", "",
          "## Designs chosen on the test questions", "",
          *[f"- {k}: " + "; ".join(f"{d} ({n})" for d, n in v.most_common(4)) for k, v in designs.items()], ""]
    (results / f"{args.task}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
