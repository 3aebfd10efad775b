"""Which topology route should be the default? `classifier` vs `edges` on equal rollout budgets.

Per seed: `hieramas train` with `topology.method=classifier` on the demo's mixture config
(`demo_mixtures.yaml`: two-proposer mixtures in every role, what this was measured on); then the
same run (its stage-1 checkpoint, decision model and rollout cache are reused, so both routes start
from the identical mixture selector) with `topology.method=edges`, whose step count is set so that
it spends the rollouts the classifier spent. Both exported bundles are loaded as a user would and
evaluated `--runs` times per held-out query; the gap is paired over queries (`stats.py`).

    python -m experiments.topology_routes --seeds 3 --runs 4      # -> experiments/results/topology_routes.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

STAGE1_FILES = ("checkpoint.pt", "best.pt", "decision.json", "run_name.txt")


def edges_steps(rollouts: int, ec, n_val: int) -> int:
    """Steps of the edges route that spend about `rollouts`, counted like the classifier's (its
    candidates on the training and validation queries): training draws, counterfactual re-draws
    and the validation runs every `val_every` steps."""
    per_step = ec.batch_size * (1 + (ec.k if ec.baseline == "counterfactual" else 0)) + n_val / ec.val_every
    return max(1, math.floor(rollouts / per_step))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topology_routes")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--runs", type=int, default=4, help="evaluation runs per held-out query and route")
    p.add_argument("--quick", action="store_true", help="demo_mixtures_quick sizes (smoke test)")
    p.add_argument("--results", default="experiments/results")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)

    import numpy as np

    from hieramas_gnn import stats
    from hieramas_gnn.eval.experiment import MIXTURES_CONFIG, MIXTURES_QUICK, evaluate_bundle, seed_config
    from hieramas_gnn.mas.runner import ExecutorRunner
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.pipeline import train_pipeline
    from hieramas_gnn.train.rewards import reward_function
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, load_roles, make_client

    ensure_offline_defaults()
    start, out = time.perf_counter(), Path(args.out)
    config = MIXTURES_QUICK if args.quick else MIXTURES_CONFIG
    base = ["tracking.wandb=disabled", *args.overrides]
    cfg0 = seed_config(config, out, 0, base)
    pool, _ = load_models(cfg0)
    client = make_client(ClientSettings.from_config(cfg0), pool)
    _, _, test, task = load_questions(cfg0)
    runner = ExecutorRunner(client, task, load_roles(cfg0, task)[0], max_in_flight=cfg0.client.max_in_flight)
    per_seed, vectors = [], {"classifier": [], "edges": []}
    for seed in range(args.seeds):
        cls_cfg = seed_config(config, out, seed, [*base, "topology.method=classifier"])
        cls = train_pipeline(cls_cfg, client=client)
        steps = edges_steps(cls.topology.rollouts, cls_cfg.topology.edges, len(cls.setup.val))
        edges_dir = out / "runs" / f"seed{seed}_edges"
        edges_dir.mkdir(parents=True, exist_ok=True)
        for name in STAGE1_FILES:  # the identical stage-1 selector (and decision model)
            if (cls_cfg.run.dir / name).exists() and not (edges_dir / name).exists():
                shutil.copy(cls_cfg.run.dir / name, edges_dir / name)
        edg_cfg = seed_config(config, out, seed, [*base, "topology.method=edges", f"topology.edges.steps={steps}",
                                                  f"run.out_dir={edges_dir}"])
        edg = train_pipeline(edg_cfg, client=client)
        row = {"seed": seed, "decision": cls.setup.decision}
        for route, res in (("classifier", cls), ("edges", edg)):
            rows, pq, _ = evaluate_bundle(res.bundle, test, runner, args.runs, reward_function(cls_cfg.reward).of_trace, pool=pool,
                                          embed_cache=cls_cfg.policy.embed_cache, control=False)
            vectors[route].append(pq["hieramas"])
            row[route] = {"accuracy": round(rows[0]["accuracy"], 4), "cost_usd": rows[0]["cost_usd"],
                          "reward": round(float(np.mean(pq["hieramas"]["reward"])), 4),
                          "rollouts": res.topology.rollouts, "route": res.topology.route, **res.topology.summary}
        per_seed.append(row)
        print(json.dumps(row, default=float), flush=True)
    mean = {r: {k: np.mean([v[k] for v in vectors[r]], axis=0) for k in ("correct", "reward")} for r in vectors}
    gaps = {k: stats.paired_gap(mean["classifier"][k], mean["edges"][k]) for k in ("correct", "reward")}
    better = {k: stats.word(g) for k, g in gaps.items()}
    result = {"config": str(Path(config).relative_to(Path.cwd())) if Path(config).is_relative_to(Path.cwd()) else str(config), "overrides": base, "seeds": args.seeds, "runs": args.runs, "n": len(test),
              "per_seed": per_seed,
              "classifier": {k: round(float(mean["classifier"][k].mean()), 4) for k in ("correct", "reward")},
              "edges": {k: round(float(mean["edges"][k].mean()), 4) for k in ("correct", "reward")},
              "classifier_minus_edges": {k: g.to_dict() for k, g in gaps.items()},
              "classifier_is": better, "wall_s": round(time.perf_counter() - start, 1),
              # the per-query vectors the paired gaps are computed from (means over seeds and runs),
              # so that a test can recompute the claim
              "question_ids": [q.id for q in test],
              "per_query": {r: {k: [round(float(v), 6) for v in mean[r][k]] for k in ("correct", "reward")}
                            for r in mean}}
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    name = "topology_routes_quick" if args.quick else "topology_routes"
    (dest / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    lines = ["# Topology routes on equal rollout budgets\n",
             f"`python -m experiments.topology_routes --seeds {args.seeds} --runs {args.runs}"
             + (" --quick" if args.quick else "") + f"` ({result['wall_s']:.0f} s). {len(test)} held-out "
             f"queries, each route's bundle run {args.runs} times per query; paired over queries.\n",
             "| seed | classifier acc | edges acc | classifier reward | edges reward | rollouts (cls / edges) |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['classifier']['accuracy']:.4f} | {r['edges']['accuracy']:.4f} | "
              f"{r['classifier']['reward']:.4f} | {r['edges']['reward']:.4f} | "
              f"{r['classifier']['rollouts']} / {r['edges']['rollouts']} |" for r in per_seed]
    for k, g in gaps.items():
        lines.append(f"\nclassifier − edges on {k}: {g.gap:+.4f} ± {g.se:.4f} (p = {g.p_value:.3f}): "
                     f"classifier {better[k]}")
    (dest / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
