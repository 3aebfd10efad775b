"""The peers of a per-query policy on a mixed replay benchmark (RouterDC, RouterBench), on the test
questions of its config, next to the figures the recorded tables give exactly.

Two parts:

1. **Recorded figures** (no replay, no sampling): each model's expected accuracy per benchmark
   straight from the tables — RouterDC's accuracy is the mean sampled pass rate for GSM8K /
   HumanEval / MBPP and "gold option most likely" for MMLU / ARC — averaged over the benchmarks:
   the best single model and the best model per benchmark (chosen on test, as the published
   tables do, and chosen on train + val), and the per-query oracle (per question the best model's
   expected score; for RouterBench the cheapest right model). This reproduces the published numbers.
2. **Peers, replayed** on the same test questions through the client (one run: a pass-rate
   question is one sampled generation per call, `backends/recorded.py`): the fitted peers
   (`best_single`, `best_per_task`, `best_design_per_task`, `router`, `knn_router`,
   `contrastive_router`, `cascade`; fitted on train + val with the config's reward and the
   policy's query embedder) and `vote`, `moa`, `oracle`; every row carries `by_component` and
   `accuracy_task_mean` with its standard error (questions weighted so the mean is over benchmarks).

    python -m experiments.mixed_peers --config experiments/configs/routerdc.yaml
    python -m experiments.mixed_peers --config experiments/configs/routerdc.yaml \\
        --set task.name=routerdc_ood task.test_size=1371          # out of distribution
    python -m experiments.mixed_peers --config experiments/configs/routerbench.yaml

Writes `experiments/results/mixed/<task>/peers.{json,md}`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PEERS = ("best_single", "best_per_task", "best_design_per_task", "router", "knn_router", "contrastive_router",
         "cascade", "vote", "moa", "oracle")


def expected_matrix(task, pool, questions):
    """(score [Q, M], cost [Q, M] or None, components [Q]) from the recorded tables."""
    from hieramas_gnn.backends.replay import Replayer

    rep = Replayer()
    names = [m.litellm_model.split("/", 1)[1] for m in pool.models]
    score, cost = np.zeros((len(questions), len(names))), np.zeros((len(questions), len(names)))
    for i, q in enumerate(questions):
        table = rep.table(q.task)
        for j, name in enumerate(names):
            s, c = table.expected(name, q.id)
            score[i, j], cost[i, j] = s, (c if c is not None else np.nan)
    return score, (None if np.isnan(cost).any() else cost), [q.meta["component"] for q in questions]


def task_means(score: np.ndarray, comps: list[str]) -> dict[str, np.ndarray]:
    """{component: per-model mean score over its questions} ([M] each)."""
    comps_a = np.asarray(comps)
    return {c: score[comps_a == c].mean(0) for c in sorted(set(comps))}


def recorded_figures(pool, fit, test, fit_q, test_q) -> dict:
    """Part 1 of the module docstring."""
    names = pool.names
    s_fit, _, c_fit = fit
    s_te, cost_te, c_te = test
    by_te, by_fit = task_means(s_te, c_te), task_means(s_fit, c_fit)
    comps = sorted(by_te)
    mean_te = np.mean([by_te[c] for c in comps], axis=0)  # [M] task mean of each model on test
    shared = [c for c in comps if c in by_fit]
    mean_fit = np.mean([by_fit[c] for c in shared], axis=0) if shared else None
    out = {"models": {m: {"task_mean": round(float(mean_te[j]), 4),
                          **{c: round(float(by_te[c][j]), 4) for c in comps}} for j, m in enumerate(names)}}
    if cost_te is not None:
        for j, m in enumerate(names):
            out["models"][m]["cost_usd"] = float(cost_te[:, j].mean())
    best = int(np.argmax(mean_te))
    out["best_single_on_test"] = {"model": names[best], "task_mean": round(float(mean_te[best]), 4)}
    if mean_fit is not None:
        chosen = int(np.argmax(mean_fit))
        out["best_single_on_train_val"] = {"model": names[chosen], "task_mean": round(float(mean_te[chosen]), 4)}
    out["best_per_task_on_test"] = {"models": {c: names[int(np.argmax(by_te[c]))] for c in comps},
                                    "task_mean": round(float(np.mean([by_te[c].max() for c in comps])), 4)}
    if shared == comps:
        picks = {c: int(np.argmax(by_fit[c])) for c in comps}
        out["best_per_task_on_train_val"] = {"models": {c: names[j] for c, j in picks.items()},
                                             "task_mean": round(float(np.mean([by_te[c][picks[c]] for c in comps])), 4)}
    oracle = task_means(s_te.max(1, keepdims=True), c_te)
    out["oracle"] = {"task_mean": round(float(np.mean([oracle[c][0] for c in comps])), 4),
                     "rule": "per question, the best model's expected score"}
    if cost_te is not None:
        right = s_te >= 1.0
        cheapest = np.where(right, cost_te, np.inf).min(1)
        out["oracle"]["cost_usd"] = float(np.where(np.isfinite(cheapest), cheapest, cost_te.min(1)).mean())
        out["oracle"]["rule"] = "per question, the cheapest model that was right (else the cheapest)"
    return out


def se_task_mean(correct: np.ndarray, comps: list[str]) -> float:
    """Standard error of the mean over components (questions weighted n / (K n_c))."""
    from hieramas_gnn.eval.frontier import task_mean_weights

    x = task_mean_weights(comps) * correct
    return float(x.std(ddof=1) / np.sqrt(len(x)))


def markdown(task: str, command: str, figures: dict, rows: list[dict], fitted: dict, n: int, wall: float) -> str:
    from hieramas_gnn.eval.report import markdown_table

    lines = [f"# Peers on {task} ({n} test questions)", "", f"Command: `{command}` ({wall:.0f} s).", "",
             "## Recorded figures (exact, from the tables)", "",
             "| model | mean over tasks | " + " | ".join(c for c in next(iter(figures["models"].values()))
                                                   if c not in ("task_mean", "cost_usd")) + " |"]
    comps = [c for c in next(iter(figures["models"].values())) if c not in ("task_mean", "cost_usd")]
    lines.append("|---|---:|" + "---:|" * len(comps))
    for m, r in sorted(figures["models"].items(), key=lambda kv: -kv[1]["task_mean"]):
        cost = f" (${r['cost_usd']:.2e}/query)" if "cost_usd" in r else ""
        lines.append(f"| {m}{cost} | {r['task_mean']:.3f} | " + " | ".join(f"{r[c]:.3f}" for c in comps) + " |")
    lines.append("")
    for key in ("best_single_on_test", "best_single_on_train_val", "best_per_task_on_test",
                "best_per_task_on_train_val", "oracle"):
        if key in figures:
            lines.append(f"- {key.replace('_', ' ')}: {figures[key]}")
    lines += ["", "## Peers, replayed on the test questions (one run)", "", markdown_table(rows, highlight=None), "",
              "Standard error of the mean over tasks: " + ", ".join(f"{r['method']} {r['se_task_mean']:.3f}"
                                                                   for r in rows if "se_task_mean" in r), "",
              f"Fitted on train + val: {fitted}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from experiments.common import write_results
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, make_client
    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval.experiment import run_baselines
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.rewards import reward_function

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="experiments/configs/routerdc.yaml")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    p.add_argument("--methods", nargs="+", default=list(PEERS))
    p.add_argument("--cache", default="runs/mixed/rollouts.sqlite")
    p.add_argument("--embed-cache", default="runs/embeddings")
    p.add_argument("--results", default="experiments/results/mixed")
    p.add_argument("--stem", default="peers", help="results file name (<results>/<task>/<stem>.{json,md})")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    t0 = time.perf_counter()
    cfg = load_config(args.config, [f"cache.path={args.cache}", f"policy.embed_cache={args.embed_cache}",
                                    "tracking.wandb=disabled", *args.overrides])
    train, val, test, task = load_questions(cfg)
    pool, _ = load_models(cfg)
    fit_q = [*train, *val]
    fit, tested = expected_matrix(task, pool, fit_q), expected_matrix(task, pool, test)
    figures = recorded_figures(pool, fit, tested, fit_q, test)
    anchor = figures.get("best_single_on_train_val", figures["best_single_on_test"])["model"]
    client = make_client(ClientSettings.from_config(cfg), pool)
    rows, per_query, fitted = run_baselines(cfg, client, test, args.methods, anchor,
                                            reward_function(cfg.reward).of_trace)
    comps = [q.meta["component"] for q in test]
    for r in rows:
        if r["method"] in per_query:
            r["se_task_mean"] = se_task_mean(per_query[r["method"]]["correct"], comps)
    wall = time.perf_counter() - t0
    command = "python -m experiments.mixed_peers --config " + args.config + \
        (f" --set {' '.join(args.overrides)}" if args.overrides else "") + \
        (f" --methods {' '.join(args.methods)}" if list(args.methods) != list(PEERS) else "") + \
        (f" --stem {args.stem}" if args.stem != "peers" else "")
    data = {"task": cfg.task.name, "pool": cfg.pool.name, "n_test": len(test), "n_fit": len(fit_q),
            "command": command, "anchor": anchor, "recorded": figures, "rows": rows, "fitted": fitted,
            "wall_s": round(wall, 1)}
    md = markdown(cfg.task.name, command, figures, rows, fitted, len(test), wall)
    write_results(Path(args.results) / cfg.task.name, args.stem, data, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
