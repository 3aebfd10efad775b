"""Can per-query choice beat the searched constant design? Measured on replay.

At every point of the real-outcome frontier the learned policy runs one design for every query
(its searched design; docs/RESULTS.md). The frontier's open bars — the routers below the best single model's
cost on MATH-L5, MoA at under half its cost — are out of reach of any constant design of the
search family (`warm_start_selection --against`), so what is left is *per-query* choice. This
experiment measures how much of it the query text can carry, on the search family itself:

- `constant`: the searched design (best mean reward on train + val; what the policy runs);
- `routed`: per query, one of the family's top-N designs on train + val, chosen from the query
  embedding as the fitted `router` baseline chooses a model (`eval/routers.fit_router` with the
  designs as its "models": a logistic P(correct | query) per design fitted on the training
  questions, its regularisation chosen on val, then the best expected reward at the design's mean
  training cost) — the most direct per-query selector over exactly the designs the policy has;
- `coin flip`: no query information at all — the two designs of the family's train + val
  cost–accuracy hull around the routed selector's test cost, mixed in the proportion that
  spends that cost (an expectation per question, so no random draw);
- `oracle`: per question the best reward among the top-N (an upper bound).

Paired over the test questions (`eval/stats.paired_gap`): routed − constant (reward and
accuracy) and routed − coin flip (accuracy at equal cost: what the query text adds at all).

    python -m experiments.per_query_choice --task math_l5 [--points hieramas:3000 …] [--top 8] \
        [--against runs/real/math_l5/lambda3000 …]   # the frontier's fitted routers vs the coin flip
    # -> experiments/results/per_query_choice_<task>.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from experiments.common import write_results
from experiments.warm_start_selection import POINTS, FamilyRun

TOP = 8


def hull(costs: np.ndarray, accs: np.ndarray) -> list[int]:
    """Indices of the upper-left concave hull of (cost, accuracy) points, by increasing cost: the
    designs a budget-mixing policy would ever mix."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -accs[i]))
    out: list[int] = []
    for i in order:
        if out and accs[i] <= accs[out[-1]]:
            continue  # dearer and not more accurate: dominated
        while len(out) >= 2:
            a, b = out[-2], out[-1]
            # drop b when it lies on or below the segment a -> i
            if (accs[b] - accs[a]) * (costs[i] - costs[a]) <= (accs[i] - accs[a]) * (costs[b] - costs[a]):
                out.pop()
            else:
                break
        out.append(i)
    return out


def coin_flip(fit_costs: np.ndarray, fit_accs: np.ndarray, test_correct: np.ndarray, test_costs: np.ndarray,
              budget: float) -> tuple[np.ndarray, float, tuple[int, int, float]]:
    """The query-blind mix of the fit hull's two designs around `budget` (their mean *test* costs
    spend it): per-question expected correctness [Q], its mean cost, and (cheap, dear, share of dear).
    Shapes: fit_* [D], test_correct [D, Q], test_costs [D]. Below the hull's cheapest design it is
    that design alone, above its dearest that one alone."""
    h = hull(fit_costs, fit_accs)
    lo = max((i for i in h if test_costs[i] <= budget), key=lambda i: test_costs[i], default=h[0])
    hi = min((i for i in h if test_costs[i] >= budget), key=lambda i: test_costs[i], default=h[-1])
    if lo == hi or test_costs[hi] <= test_costs[lo]:
        return test_correct[lo].astype(float), float(test_costs[lo]), (lo, lo, 0.0)
    share = float((budget - test_costs[lo]) / (test_costs[hi] - test_costs[lo]))
    mix = (1 - share) * test_correct[lo] + share * test_correct[hi]
    return mix, float((1 - share) * test_costs[lo] + share * test_costs[hi]), (lo, hi, share)


def measure(run: FamilyRun, point: str, embed, top: int = TOP) -> dict:
    """One reward point: constant, routed over the top-`top` designs, coin flip and oracle on test."""
    from hieramas_gnn.eval.routers import SingleOutcomes, fit_router
    from hieramas_gnn.train.rewards import Reward
    from hieramas_gnn.stats import paired_gap

    shape, _, lam = point.partition(":")
    rewards = run.rewards(point)
    fit, held, tr = run.fit["train_val"], run.held, run.fit["train"]
    va = slice(tr.stop, fit.stop)
    fam = run.family(rewards, fit)
    costs = {d: float(run.outcomes[d][1][fit].mean()) for d in fam}
    ranked = sorted(fam, key=lambda d: (-rewards(d)[fit].mean(), costs[d], d.summary()))
    cands = ranked[:top]
    correct = np.stack([run.outcomes[d][0] for d in cands], 1)  # [Q, N]
    cost = np.stack([run.outcomes[d][1] for d in cands], 1)
    reward = np.stack([rewards(d) for d in cands], 1)
    names = [d.summary() for d in cands]
    ids = [q.id for q in run.questions]
    part = lambda s: SingleOutcomes(ids[s], names, [[None] * len(names)] * len(ids[s]),  # noqa: E731
                                    correct[s].astype(bool), cost[s])
    x = np.asarray(embed([q.text for q in run.questions]))
    router = fit_router(x[tr], part(tr), x[va], part(va), Reward(shape, float(lam)), seed=run.cfg.run.seed)
    choice = np.argmax(router.expected_reward(x[held]), axis=1)  # [T]
    rows = np.arange(len(choice))
    routed = {"correct": correct[held][rows, choice], "cost": cost[held][rows, choice],
              "reward": reward[held][rows, choice]}
    const = {"correct": correct[held][:, 0], "cost": cost[held][:, 0], "reward": reward[held][:, 0]}
    oracle = reward[held].max(1)
    every = list(fam)
    fit_c = np.array([costs[d] for d in every])
    fit_a = np.array([run.outcomes[d][0][fit].mean() for d in every])
    test_ok = np.stack([run.outcomes[d][0][held] for d in every])
    test_c = np.array([run.outcomes[d][1][held].mean() for d in every])
    mix, mix_cost, (lo, hi, share) = coin_flip(fit_c, fit_a, test_ok, test_c, float(routed["cost"].mean()))
    gap_r, gap_a, gap_mix = (paired_gap(routed["reward"], const["reward"]),
                             paired_gap(routed["correct"], const["correct"]), paired_gap(routed["correct"], mix))
    room = float(oracle.mean() - const["reward"].mean())
    return {
        "point": point, "designs": len(fam), "top": len(cands), "router_C": router.C,
        "constant": {"design": names[0], "accuracy": float(const["correct"].mean()),
                     "cost_usd": float(const["cost"].mean()), "reward": float(const["reward"].mean())},
        "routed": {"accuracy": float(routed["correct"].mean()), "cost_usd": float(routed["cost"].mean()),
                   "reward": float(routed["reward"].mean()),
                   "shares": {names[i]: float((choice == i).mean()) for i in range(len(names)) if (choice == i).any()}},
        "oracle_reward": float(oracle.mean()),
        "oracle_gap_reached": (gap_r.gap / room) if room > 0 else None,
        "routed_minus_constant": {"reward": gap_r.gap, "reward_band": 2 * gap_r.se, "reward_p": gap_r.p_value,
                                  "accuracy": gap_a.gap, "accuracy_band": 2 * gap_a.se},
        "coin_flip": {"cheap": every[lo].summary(), "dear": every[hi].summary(), "share_dear": share,
                      "accuracy": float(mix.mean()), "cost_usd": mix_cost},
        "routed_minus_coin_flip": {"accuracy": gap_mix.gap, "band": 2 * gap_mix.se, "p": gap_mix.p_value},
    }


def against_routers(run: FamilyRun, folders: list[str]) -> list[dict]:
    """Each frontier point folder's fitted `router` (its `per_query.json`) against the query-blind
    coin flip of every design run so far (hull on train + val) at the router's test cost."""
    from hieramas_gnn.stats import paired_gap

    test_ids = [q.id for q in run.test]
    every = list(run.outcomes)
    fit, held = run.fit["train_val"], run.held
    fit_c = np.array([run.outcomes[d][1][fit].mean() for d in every])
    fit_a = np.array([run.outcomes[d][0][fit].mean() for d in every])
    test_ok = np.stack([run.outcomes[d][0][held] for d in every])
    test_c = np.array([run.outcomes[d][1][held].mean() for d in every])
    out = []
    for folder in folders:
        data = json.loads((Path(folder) / "per_query.json").read_text())
        where = {q: i for i, q in enumerate(data["question_ids"])}
        if set(where) != set(test_ids):
            raise SystemExit(f"--against {folder}: its questions are not this split's test questions")
        order = [where[q] for q in test_ids]
        router = data["methods"].get("router")
        if router is None:
            raise SystemExit(f"--against {folder}: per_query.json has no `router` method")
        ok = np.asarray(router["correct"], dtype=float)[order]
        budget = float(np.asarray(router["cost"], dtype=float)[order].mean())
        mix, mix_cost, (lo, hi, share) = coin_flip(fit_c, fit_a, test_ok, test_c, budget)
        gap = paired_gap(ok, mix)
        out.append({"folder": str(folder), "router_accuracy": float(ok.mean()), "router_cost_usd": budget,
                    "coin_flip_accuracy": float(mix.mean()), "coin_flip_cost_usd": mix_cost,
                    "coin_flip": f"{share:.0%} {every[hi].summary()} / {every[lo].summary()}",
                    "router_minus_coin_flip": gap.gap, "band": 2 * gap.se, "p": gap.p_value})
    return out


def markdown(task: str, pool: str, sizes: tuple[int, int, int], rows: list[dict], top: int,
             routers: list[dict]) -> str:
    lines = [f"# Per-query choice over the search family — {task} replay ({Path(pool).stem})", "",
             f"Command: `python -m experiments.per_query_choice --task {task} --top {top}`. Seeded split of "
             f"`replay_{task}.yaml`: {sizes[0]} train, {sizes[1]} val, {sizes[2]} test questions. `constant` = the "
             f"searched design; `routed` = per query one of the top {top} designs on train + val, chosen from the query "
             "embedding (`fit_router` over designs: fit on train, C on val); `coin flip` = the query-blind mix of the "
             "two train + val hull designs that spends the routed cost; gaps paired over the test questions (± 2 SE).",
             "", "| point | constant (acc @ $/q) | routed (acc @ $/q) | routed − constant: reward | accuracy "
             "| oracle gap reached | coin flip at routed cost | routed − coin flip (acc) |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, o, g, m, f = r["constant"], r["routed"], r["routed_minus_constant"], r["coin_flip"], r["routed_minus_coin_flip"]
        reach = "—" if r["oracle_gap_reached"] is None else f"{r['oracle_gap_reached']:+.0%}"
        lines.append(f"| {r['point']} | {c['accuracy']:.3f} @ {c['cost_usd']:.2e} | {o['accuracy']:.3f} @ "
                     f"{o['cost_usd']:.2e} | {g['reward']:+.3f} ± {g['reward_band']:.3f} | {g['accuracy']:+.3f} ± "
                     f"{g['accuracy_band']:.3f} | {reach} | {m['accuracy']:.3f} @ {m['cost_usd']:.2e} | "
                     f"{f['accuracy']:+.3f} ± {f['band']:.3f} |")
    lines += ["", "Constant designs and the routed choice per point:", ""]
    for r in rows:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["routed"]["shares"].items(), key=lambda kv: -kv[1]))
        lines.append(f"- **{r['point']}**: constant {r['constant']['design']}; routed (C = {r['router_C']}): {shares}; "
                     f"coin flip: {r['coin_flip']['share_dear']:.0%} {r['coin_flip']['dear']} / "
                     f"{r['coin_flip']['cheap']}")
    if routers:
        lines += ["", "The fitted `router` baselines of the frontier (per-model choice from the query embedding) "
                  "against the query-blind coin flip of the family's designs at the router's own test cost "
                  "(`--against`):", "", "| frontier point | router (acc @ $/q) | coin flip (acc @ $/q) | mix "
                  "| router − coin flip |", "|---|---|---|---|---:|"]
        lines += [f"| {Path(r['folder']).name} | {r['router_accuracy']:.3f} @ {r['router_cost_usd']:.2e} | "
                  f"{r['coin_flip_accuracy']:.3f} @ {r['coin_flip_cost_usd']:.2e} | {r['coin_flip']} | "
                  f"{r['router_minus_coin_flip']:+.3f} ± {r['band']:.3f} |" for r in routers]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from hieramas_gnn.eval.routers import query_embedder

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="math_l5", choices=tuple(POINTS))
    p.add_argument("--points", nargs="+", help="reward points shape:lambda (default: the frontier's points)")
    p.add_argument("--top", type=int, default=TOP, help="designs the per-query selector chooses among")
    p.add_argument("--out", default="runs/per_query_choice", help="run folder (split, rollout cache)")
    p.add_argument("--cache", default=None, help="rollout cache (default: OUT/<task>/rollouts.sqlite)")
    p.add_argument("--results", default="experiments/results")
    p.add_argument("--against", nargs="+", default=[], metavar="FOLDER",
                   help="real_frontier point folders: their fitted router against the coin flip at its cost")
    args = p.parse_args(argv)
    if args.top < 2:
        p.error(f"--top must be >= 2 (a choice needs two designs), got {args.top}")
    t0 = time.perf_counter()
    run = FamilyRun(args.task, args.out, args.cache)
    embed = query_embedder(run.cfg.policy.embedder, str(Path(args.out) / "embeddings"), run.cfg.policy.hashing_dim)
    rows = []
    for point in args.points or POINTS[args.task]:
        rows.append(measure(run, point, embed, args.top))
        r = rows[-1]
        print(f"{point:14s} constant {r['constant']['accuracy']:.3f} @ {r['constant']['cost_usd']:.2e}  routed "
              f"{r['routed']['accuracy']:.3f} @ {r['routed']['cost_usd']:.2e}  reward gap "
              f"{r['routed_minus_constant']['reward']:+.3f}  vs coin flip {r['routed_minus_coin_flip']['accuracy']:+.3f}",
              flush=True)
    routers = against_routers(run, args.against)
    sizes = (len(run.train), len(run.val), len(run.test))
    out = {"task": args.task, "pool": run.cfg.pool.name, "n_train": sizes[0], "n_val": sizes[1], "n_test": sizes[2],
           "top": args.top, "rows": rows, "routers": routers, "wall_s": round(time.perf_counter() - t0, 1)}
    write_results(args.results, f"per_query_choice_{args.task}", out,
                  markdown(args.task, run.cfg.pool.name, sizes, rows, args.top, routers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
