"""Topology learners compared on equal rollout budgets: stage 2 (graph classification) vs per-edge
REINFORCE with the GNN edge head (G-Designer-style), free edge logits (GPTSwarm-style) and
iterative pruning (AgentPrune-style), plus a random DAG from stage 2's candidate pool.

For each seed: train the stage-1 selector on the demo's mixture config (`demo_mixtures.yaml`:
two-proposer mixtures in every role, as `hieramas demo` trained it before its per-cluster warm
start; same offline sim pool and synthetic tasks), freeze it, then give every topology learner the rollouts
stage 2 spent (its candidate runs on the training and validation queries) and evaluate all of
them with the frozen selector's mixtures on the held-out queries.

Run (about as long as the demo):
    .venv/bin/python -m experiments.topology_comparison --seeds 3 --out runs/topology
writes experiments/results/topology_comparison.json and .md (override with --results).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topology", help="run folder (cache, stage-1 runs)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--pool", default=None, help="pool (default: the demo's)")
    p.add_argument("--results", default="experiments/results", help="where the .json/.md go")
    p.add_argument("--runs", type=int, default=4, help="evaluation runs per held-out query and method")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)

    from experiments.common import demo_runs, train_selector
    from hieramas_gnn.train.rewards import reward_function
    from hieramas_gnn.eval.evaluate import aggregate_seeds
    from hieramas_gnn.eval.report import markdown_table
    from experiments import edgewise

    start = time.perf_counter()
    runs = demo_runs(args.out, args.overrides, quick=args.quick, pool=args.pool)
    cfg0, test = runs.cfg0, runs.test
    per_seed, infos, pq_seeds = [], [], []
    for seed in range(args.seeds):
        cfg = runs.config(seed)
        setup, select, s2cfg = train_selector(cfg, runs.client)
        rows, info = edgewise.compare_topologies(
            setup.policy, setup.builder, select, setup.train, setup.val, test, setup.runner,
            reward_function(cfg.reward).of_trace, s2cfg, edgewise.EdgewiseConfig(seed=seed), decision=setup.decision,
            eval_runs=args.runs)
        per_seed.append(rows)
        pq_seeds.append(info.pop("per_query"))
        infos.append({"seed": seed, **info})
        print(f"seed {seed}: " + ", ".join(f"{r['method']} {r['accuracy']:.3f}" for r in rows), flush=True)
    rows = aggregate_seeds(per_seed)
    for r in rows:  # the budget is the same per seed; keep it visible in the aggregate
        r["rollouts"] = per_seed[0][[x["method"] for x in per_seed[0]].index(r["method"])]["rollouts"]
    paired = paired_vs_stage2(pq_seeds)
    result = {"task": cfg0.task.name, "runs": args.runs, "paired_vs_stage2": paired, "pool": cfg0.pool.name, "decision": cfg0.pool.decision, "n": len(test),
              "seeds": args.seeds,
              "reward": {"shape": cfg0.reward.shape, "cost_lambda": cfg0.reward.cost_lambda},
              "quick": args.quick, "wall_s": round(time.perf_counter() - start, 1), "per_seed": infos,
              "results": rows}
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "topology_comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    (dest / "topology_comparison.md").write_text(render_md(result, markdown_table(rows, "stage2-graph-classifier")))
    print(markdown_table(rows, "stage2-graph-classifier"))
    return 0


def paired_vs_stage2(pq_seeds: list[dict]) -> dict:
    """Per method: stage 2's accuracy minus the method's, paired over held-out queries (per-query
    correctness averaged over seeds and runs), with the standard error of that mean difference."""
    import numpy as np

    from hieramas_gnn.stats import paired_gap

    mean = {m: np.mean([np.asarray(pq[m]) for pq in pq_seeds], axis=0) for m in pq_seeds[0]}  # [Q] each
    ref = mean["stage2-graph-classifier"]
    out = {}
    for m, v in mean.items():
        if m == "stage2-graph-classifier":
            continue
        g = paired_gap(ref, v)
        out[m] = {"gap": round(g.gap, 4), "se": round(g.se, 4), "p_value": g.to_dict()["p_value"]}
    return out


def render_md(result: dict, table: str) -> str:
    budget = result["per_seed"][0]["budget_rollouts"] if result["per_seed"] else 0
    aucs = ", ".join(f"{i['stage2_val_auc']:.3f}" for i in result["per_seed"])
    return "\n".join([
        "# Topology learners on equal rollout budgets", "",
        f"Task `{result['task']}`, pool `{result['pool']}`, {result['n']} held-out queries, "
        f"{result['seeds']} seeds (mean ± std), reward {result['reward']['shape']} with "
        f"λ = {result['reward']['cost_lambda']}. Every learner had {budget} training rollouts "
        "(what stage 2 spent on its candidates); all use the same frozen stage-1 mixtures.", "",
        table, "",
        f"Stage-2 validation per-query ROC-AUC per seed: {aucs}. Each method ran {result['runs']} times "
        "per held-out query (the rows are means over runs).", "",
        "Stage 2 minus each method, paired over the held-out queries (mean ± standard error; a gap "
        "beyond two standard errors is a win or a loss, else a tie):", "",
        "| method | stage 2 − method | verdict |", "|---|---:|---|",
        *[f"| {m} | {p['gap']:+.4f} ± {p['se']:.4f} | "
          f"{'stage 2 better' if p['gap'] > 2 * p['se'] else ('stage 2 worse' if -p['gap'] > 2 * p['se'] else 'tie')} |"
          for m, p in result["paired_vs_stage2"].items()], "",
        "`random-dag-same-pool`: one DAG drawn at random from the K candidates stage 2 scored for "
        "that query. Produced by `python -m experiments.topology_comparison"
        + (" --quick" if result["quick"] else "") + f" --seeds {result['seeds']} --runs {result['runs']}` "
        f"in {result['wall_s']:.0f} s.", ""])


if __name__ == "__main__":
    raise SystemExit(main())
