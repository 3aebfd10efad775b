"""How cheaply can the design space reach GPT-4 on RouterBench? Constant designs, per-task designs
and per-query oracles against GPT-4's accuracy (mean over the three benchmarks) and cost.

On the split of `experiments/configs/routerbench.yaml` (test: all 952 questions; the designs are
chosen on the first `--fit-limit` of the 2,212 train + val questions, a stratified draw), every
design of a fixed family is replayed on every question (`backends/recorded.py`: real
letters, real per-question costs): each of the 11 models alone, and the family of the design
search built from the `--top` models most accurate on train + val (votes of 2 and 3 one-proposer
roles with the most accurate model deciding on disagreement, a 3-model mixture, plurality votes of
3..top in two tie orders: `eval/design_per_task.candidate_designs`). Reported, each on test:

- **constant designs**: the most accurate design at no more than 25 % / 50 % / 100 % of GPT-4's
  cost, chosen on test (a ceiling) and chosen on train + val (what a search can find), and which
  designs reach GPT-4's accuracy at all;
- **per-task designs** (one design per benchmark, knowing the task): the same, over every
  combination of per-benchmark choices (singles only, then the whole family);
- **per-query oracles**: per question the cheapest right model (and the cheapest right design).

    python -m experiments.mixed_ceiling        # -> experiments/results/mixed/routerbench/ceiling.{json,md}
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

GPT4 = "gpt-4-1106-preview"
BUDGETS = (0.25, 0.5, 1.0)


def run_family(runner, designs: dict, questions: list) -> tuple[np.ndarray, np.ndarray]:
    """(correct [D, Q], cost [D, Q]) of every design on every question."""
    names = list(designs)
    traces = runner.run([(designs[n], q) for n in names for q in questions])
    n = len(questions)
    correct = np.array([[bool(t.correct) and not t.failed for t in traces[i * n:(i + 1) * n]] for i in range(len(names))])
    cost = np.array([[t.cost_usd for t in traces[i * n:(i + 1) * n]] for i in range(len(names))])
    return correct.astype(float), cost


def per_component(values: np.ndarray, comps: np.ndarray, names: list[str]) -> np.ndarray:
    """[D, Q] -> [D, K]: each design's mean over each component's questions."""
    return np.stack([values[:, comps == c].mean(1) for c in names], axis=1)


def best_under(acc: np.ndarray, cost: np.ndarray, limit: float) -> int | None:
    ok = np.flatnonzero(cost <= limit)
    return None if not len(ok) else int(ok[np.lexsort((cost[ok], -acc[ok]))[0]])


def per_task_combos(acc_k: np.ndarray, cost_k: np.ndarray, share: np.ndarray, pick: list[int]) -> tuple:
    """Every combination of one design per component (designs `pick`): (choices [C, K], task-mean
    accuracy [C], mean cost per query [C]); `share` [K] = each component's share of the questions."""
    combos = np.array(list(itertools.product(pick, repeat=acc_k.shape[1])))  # [C, K]
    k = np.arange(acc_k.shape[1])
    return combos, acc_k[combos, k].mean(1), (cost_k[combos, k] * share).sum(1)


def main(argv: list[str] | None = None) -> int:
    from experiments.common import write_results
    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval.design_per_task import candidate_designs, single_design
    from hieramas_gnn.mas.runner import ExecutorRunner
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, load_roles, make_client

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="experiments/configs/routerbench.yaml")
    p.add_argument("--top", type=int, default=5, help="models the voting designs draw from (best on train + val)")
    p.add_argument("--fit-limit", type=int, default=600,
                   help="train + val questions the designs are chosen on (the split's stratified order; 0: all)")
    p.add_argument("--cache", default="runs/mixed/rollouts.sqlite")
    p.add_argument("--results", default="experiments/results/mixed")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    t0 = time.perf_counter()
    cfg = load_config(args.config, [f"cache.path={args.cache}", "tracking.wandb=disabled"])
    train, val, test, task = load_questions(cfg)
    fit = [*train, *val][: args.fit_limit or None]
    pool, _ = load_models(cfg)
    roleset, _ = load_roles(cfg, task)
    runner = ExecutorRunner(make_client(ClientSettings.from_config(cfg), pool), task, roleset, max_in_flight=64)
    singles = {f"single {m}": single_design(roleset, m) for m in pool.names}
    s_fit = run_family(runner, singles, fit)
    acc_fit, cost_fit = s_fit[0].mean(1), s_fit[1].mean(1)
    models = list(pool.names)
    by_acc = sorted(models, key=lambda m: (-acc_fit[models.index(m)], cost_fit[models.index(m)], m))
    by_cost = sorted(models, key=lambda m: (-cost_fit[models.index(m)], m))
    designs = dict(singles)
    for d in candidate_designs(roleset, by_acc, by_acc, by_cost, top=args.top):
        designs.setdefault(d.summary(), d)
    names = list(designs)
    c_fit, k_fit = run_family(runner, designs, fit)
    c_te, k_te = run_family(runner, designs, test)
    comps = sorted({q.meta["component"] for q in test})
    comp_fit = np.array([q.meta["component"] for q in fit])
    comp_te = np.array([q.meta["component"] for q in test])
    share = np.array([(comp_te == c).mean() for c in comps])
    acc_k_fit, acc_k_te = per_component(c_fit, comp_fit, comps), per_component(c_te, comp_te, comps)
    cost_k_fit, cost_k_te = per_component(k_fit, comp_fit, comps), per_component(k_te, comp_te, comps)
    mean_fit, mean_te = acc_k_fit.mean(1), acc_k_te.mean(1)  # task means [D]
    cost_d_fit, cost_d_te = k_fit.mean(1), k_te.mean(1)
    g = names.index(f"single {GPT4}")
    ref = {"accuracy_task_mean": float(mean_te[g]), "cost_usd": float(cost_d_te[g]),
           "by_component": dict(zip(comps, acc_k_te[g].round(4).tolist()))}

    def point(i: int | None, split_acc=mean_te, split_cost=cost_d_te) -> dict | None:
        return None if i is None else {"design": names[i], "accuracy_task_mean": round(float(split_acc[i]), 4),
                                       "cost_usd": float(split_cost[i]), "test_accuracy_task_mean": round(float(mean_te[i]), 4),
                                       "test_cost_usd": float(cost_d_te[i])}

    out = {"task": cfg.task.name, "pool": cfg.pool.name, "top": args.top, "fit_limit": args.fit_limit, "n_fit": len(fit), "n_test": len(test), "gpt4": ref,
           "n_designs": len(names), "constant": {}, "per_task": {}, "per_query": {}}
    for b in BUDGETS:
        lim = b * ref["cost_usd"]
        out["constant"][f"{b:g}"] = {"chosen_on_test": point(best_under(mean_te, cost_d_te, lim)),
                                     "chosen_on_train_val": point(best_under(mean_fit, cost_d_fit, b * cost_d_fit[g]),
                                                                  mean_fit, cost_d_fit)}
    reach = [i for i in range(len(names)) if mean_te[i] >= ref["accuracy_task_mean"]]
    out["constant"]["reach_gpt4_on_test"] = sorted((point(i) for i in reach), key=lambda r: r["cost_usd"])[:10]
    single_idx = [names.index(s) for s in singles]
    for label, pick in (("singles", single_idx), ("designs", list(range(len(names))))):
        combos, acc_te_c, cost_te_c = per_task_combos(acc_k_te, cost_k_te, share, pick)
        _, acc_fit_c, cost_fit_c = per_task_combos(acc_k_fit, cost_k_fit, share, pick)
        rows = {}
        for b in BUDGETS:
            on_test = best_under(acc_te_c, cost_te_c, b * ref["cost_usd"])
            on_fit = best_under(acc_fit_c, cost_fit_c, b * cost_d_fit[g])
            rows[f"{b:g}"] = {split: None if i is None else
                              {"designs": {c: names[j] for c, j in zip(comps, combos[i])},
                               "test_accuracy_task_mean": round(float(acc_te_c[i]), 4), "test_cost_usd": float(cost_te_c[i])}
                              for split, i in (("chosen_on_test", on_test), ("chosen_on_train_val", on_fit))}
        out["per_task"][label] = rows
    for label, idx in (("cheapest right model", single_idx), ("cheapest right design", list(range(len(names))))):
        right = c_te[idx] > 0  # [D', Q]
        cheapest = np.where(right, k_te[idx], np.inf).min(0)
        cost = np.where(np.isfinite(cheapest), cheapest, k_te[idx].min(0))
        acc = per_component(right.any(0, keepdims=True).astype(float), comp_te, comps)[0]
        out["per_query"][label] = {"accuracy_task_mean": round(float(acc.mean()), 4), "cost_usd": float(cost.mean()),
                                   "cost_share_of_gpt4": round(float(cost.mean() / ref["cost_usd"]), 4)}
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    write_results(Path(args.results) / cfg.task.name, "ceiling", out, markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    ref = out["gpt4"]
    lines = [f"# Ceiling check: {out['task']} replay ({out['pool']})", "",
             f"Command: `python -m experiments.mixed_ceiling --top {out['top']} --fit-limit {out['fit_limit']}` "
             f"({out['wall_s']:.0f} s). {out['n_designs']} fixed designs "
             f"replayed on {out['n_fit']} train + val and {out['n_test']} test questions (authors' split).", "",
             f"GPT-4 ({GPT4}) on test: accuracy (mean over the benchmarks) **{ref['accuracy_task_mean']:.3f}** "
             f"({ref['by_component']}) at {ref['cost_usd']:.2e} $/query.", "",
             "| what | budget (share of GPT-4's cost) | chosen on | designs | test accuracy (task mean) | test $/query |",
             "|---|---:|---|---|---:|---:|"]
    for b, r in out["constant"].items():
        if b == "reach_gpt4_on_test":
            continue
        for split, pt in r.items():
            if pt:
                lines.append(f"| constant design | {b} | {split.split('_on_')[1].replace('_', ' + ')} | {pt['design']} | "
                             f"{pt['test_accuracy_task_mean']:.3f} | {pt['test_cost_usd']:.2e} |")
    for label, rows in out["per_task"].items():
        for b, r in rows.items():
            for split, pt in r.items():
                if pt:
                    lines.append(f"| per-task {label} | {b} | {split.split('_on_')[1].replace('_', ' + ')} | "
                                 + "; ".join(f"{c}: {d}" for c, d in pt["designs"].items())
                                 + f" | {pt['test_accuracy_task_mean']:.3f} | {pt['test_cost_usd']:.2e} |")
    for label, pt in out["per_query"].items():
        lines.append(f"| per-query oracle: {label} | - | test | - | {pt['accuracy_task_mean']:.3f} | "
                     f"{pt['cost_usd']:.2e} ({pt['cost_share_of_gpt4']:.1%} of GPT-4) |")
    lines += ["", "Constant designs at least as accurate as GPT-4 on test (cheapest first):", ""]
    lines += [f"- {r['design']}: {r['accuracy_task_mean']:.3f} at {r['cost_usd']:.2e} $/query "
              f"({r['cost_usd'] / ref['cost_usd']:.0%} of GPT-4)" for r in out["constant"]["reach_gpt4_on_test"]] or ["- none"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
