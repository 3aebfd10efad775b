"""A cost-conditioned bundle at each fitted router's cost: `--target-cost-per-query` against the
routers below the best single model's cost, paired over the held-out test questions.

On MATH-L5 replay the fitted routers of the real frontier (`experiments/real_frontier.py`: one
`router` baseline per reward point, fitted on the same train + val questions for that point's
reward) spend less than the best single model (Qwen2.5-72B, $1.61e-4/query), where no constant
design of the frontier has a point. Here:

1. each router is fitted again exactly as the frontier fitted it (`eval.experiment.run_baselines`
   with the point's `reward.shape` / `reward.cost_lambda`, seed 0, the task config's split) and run
   on the test questions: its per-question correct / cost, and the best single model's;
2. for every router whose test $/query is below the best single model's, the bundle is evaluated
   with a target $/query = that router's test $/query, as `hieramas eval --policy B
   --target-cost-per-query X` plans it (`policy.cost.plan_target_cost` over the bundle's grid: the
   same steps as `commands/eval.cost_plans`, which an experiment may not import);
3. policy − router accuracy, paired over the questions (`stats.paired_gap`, ± 2 SE), with the
   planned and realised $/query.

    python -m experiments.cost_target_routers --policy runs/cc_target/math_l5/exp_1000_10000/seed0/policy \\
        --set cache.path=runs/cc_target/math_l5/rollouts.sqlite policy.embed_cache=runs/cc_target/embeddings

Writes `experiments/results/cost_conditioned/<task>_target_routers.{json,md}`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.common import write_results

ROUTERS = ("hieramas:30", "hieramas:100", "hieramas:300", "hieramas:3000", "exp:100", "exp:1000")
RESULTS = Path(__file__).resolve().parent / "results" / "cost_conditioned"


def fitted_router(config: Path, point: str, overrides: list[str], test_ids: list[str]) -> dict:
    """The frontier's `router` (and `best_single`) baseline of one reward point, refitted and run on
    the test questions: per-question vectors in `test_ids` order."""
    import numpy as np

    from hieramas_gnn.build import ClientSettings, load_models, load_questions, make_client
    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval.experiment import run_baselines

    shape, _, lam = point.partition(":")
    cfg = load_config(config, ["tracking.wandb=disabled", "tracking.progress=false", "run.seed=0",
                               f"reward.shape={shape}", f"reward.cost_lambda={float(lam)}", *overrides])
    pool, _ = load_models(cfg)
    client = make_client(ClientSettings.from_config(cfg), pool)
    _train, _val, test, _task = load_questions(cfg)
    if sorted(q.id for q in test) != sorted(test_ids):
        raise SystemExit(f"router {point}: the config's test questions are not the bundle's held-out questions")
    _rows, per_query, fitted = run_baselines(cfg, client, test, ["router", "best_single"], None)
    order = {q.id: i for i, q in enumerate(test)}
    idx = np.array([order[i] for i in test_ids])
    return {m: {k: np.asarray(v)[idx] for k, v in per_query[m].items()} for m in ("router", "best_single")} | {
        "fitted": fitted}


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from hieramas_gnn import stats
    from hieramas_gnn.build import build_runner, load_models, load_questions, load_roles
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval.experiment import CONFIGS
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.policy.cost import plan_target_cost

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, help="a cost-conditioned bundle of the task (its seed-0 split)")
    p.add_argument("--task", default="math_l5")
    p.add_argument("--routers", nargs="+", default=list(ROUTERS), help="reward points shape:lambda of the routers")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides for the routers' runs (the rollout cache, the embedding cache)")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    t0 = time.perf_counter()
    config = CONFIGS / f"replay_{args.task}.yaml"
    cfg = load_config(config, ["tracking.wandb=disabled", "tracking.progress=false", "run.seed=0", *args.overrides])
    _train, _val, test, task = load_questions(cfg)
    roleset, _ = load_roles(cfg, task)
    pool, _ = load_models(cfg)
    chooser, meta = load_chooser(Path(args.policy), pool=pool, embed_cache=cfg.policy.embed_cache)
    recorded = ((meta.training or {}).get("split") or {}).get("test")
    if recorded is not None and sorted(map(str, recorded)) != sorted(q.id for q in test):
        raise SystemExit(f"{args.policy}: its held-out questions are not the seed-0 split of {config.name}")
    grid = chooser.cost
    if grid is None:
        raise SystemExit(f"{args.policy}: not a cost-conditioned bundle")
    runner = build_runner(cfg, task, roleset, pool)
    ids = [q.id for q in test]
    qs = [(q.text, q.meta) for q in test]
    # commands/eval.cost_plans: each question's design at every grid λ, its expected cost from the grid
    per_point = [chooser.designs(qs, lam) for lam in grid.lambdas]  # [K][Q]
    expected = [[grid.designs.get(d.summary(), float(pt["cost_usd"])) for d in ds]
                for ds, pt in zip(per_point, grid.points)]
    accuracy = [float(pt.get("accuracy") or 0.0) for pt in grid.points]

    routers = {pt: fitted_router(config, pt, args.overrides, ids) for pt in args.routers}
    best = next(iter(routers.values()))["best_single"]
    best_cost = float(best["cost"].mean())
    rows, lines = [], []
    for pt, r in sorted(routers.items(), key=lambda kv: float(kv[1]["router"]["cost"].mean())):
        r_ok, r_cost = r["router"]["correct"], float(r["router"]["cost"].mean())
        row = {"router": pt, "router_accuracy": float(r_ok.mean()), "router_cost_usd": r_cost,
               "below_best_single": r_cost < best_cost}
        if r_cost < best_cost:
            plan = plan_target_cost(expected, accuracy, r_cost, ids)
            designs = [per_point[k][i] for i, k in enumerate(plan.assign)]
            traces = runner.run(list(zip(designs, test)))
            ok = np.array([float(bool(t.correct) and not t.failed) for t in traces])
            cost = np.array([float(t.cost_usd) for t in traces])
            gap = stats.paired_gap(ok, r_ok)
            met = bool(gap.gap >= 0)
            row |= {"target_cost_usd": r_cost, "planned_cost_usd": plan.planned_cost_usd, "feasible": plan.feasible,
                    "plan": plan.to_dict(grid.lambdas), "policy_accuracy": float(ok.mean()),
                    "policy_cost_usd": float(cost.mean()), "gap": gap.gap, "two_se": 2 * gap.se, "p": gap.p_value,
                    "met": met, "significant": bool(abs(gap.gap) > 2 * gap.se),
                    "designs": {d: int(n) for d, n in _count(designs)}}
            verdict = ("met" if met else "NOT met") + (" (significant)" if abs(gap.gap) > 2 * gap.se else
                                                      " (within 2 SE)")
            shares = ", ".join(f"λ={k}: {v:.0%}" for k, v in row["plan"]["share_per_cost_lambda"].items())
            lines.append(f"| {pt} | {r_ok.mean():.3f} @ {r_cost:.3e} | {ok.mean():.3f} @ {cost.mean():.3e} "
                         f"(planned {plan.planned_cost_usd:.3e}; {shares}) | {gap.gap:+.3f} ± {2 * gap.se:.3f} | "
                         f"{cost.mean() / r_cost:.3f} | {verdict} |")
        rows.append(row)
    out = {"task": args.task, "policy": str(args.policy), "n": len(test),
           "best_single": {"accuracy": float(best["correct"].mean()), "cost_usd": best_cost},
           "grid": [{"cost_lambda": lam, **pt} for lam, pt in zip(grid.lambdas, grid.points)],
           "rows": rows, "wall_s": round(time.perf_counter() - t0, 1)}
    md = [f"# `--target-cost-per-query` at each fitted router's cost: {args.task} replay", "",
          f"Command: `python -m experiments.cost_target_routers --policy {args.policy} --task {args.task}"
          + (f" --set {' '.join(args.overrides)}" if args.overrides else "") + "`", "",
          f"{len(test)} held-out test questions. Routers refitted as the real frontier fitted them (seed 0, the "
          f"point's reward); the best single model on the test questions: {best['correct'].mean():.3f} @ "
          f"{best_cost:.3e} $/query. Per router below that cost, the bundle with `--target-cost-per-query` = the "
          "router's test $/query; gap = policy − router accuracy, paired over the questions (± 2 SE); met = the "
          "gap is >= 0.", "",
          "Bundle grid (validation accuracy @ $/query per grid λ): "
          + "; ".join(f"λ={lam:g}: {pt.get('accuracy', float('nan')):.3f} @ {float(pt['cost_usd']):.3e}"
                      for lam, pt in zip(grid.lambdas, grid.points)), "",
          "| router (reward point) | router acc @ $/query | policy acc @ realised $/query | gap ± 2 SE | "
          "realised / target cost | verdict |", "|---|---|---|---:|---:|---|", *lines, ""]
    skipped = [r for r in rows if not r["below_best_single"]]
    if skipped:
        md += ["Not below the best single model's cost (not part of the bar): "
               + "; ".join(f"{r['router']} {r['router_accuracy']:.3f} @ {r['router_cost_usd']:.3e}" for r in skipped), ""]
    write_results(args.results, f"{args.task}_target_routers", out, "\n".join(md))
    print("\n".join(md))
    return 0


def _count(designs) -> list[tuple[str, int]]:
    from collections import Counter

    return Counter(d.summary() for d in designs).most_common()


if __name__ == "__main__":
    raise SystemExit(main())
