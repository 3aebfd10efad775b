"""Which questions should the design search rank on? The search's winner's curse, measured on replay.

The warm-start search (`train/warm_start.py`) picks the best of ~200 fixed designs by mean reward
on its search questions. With that many designs and 300 training questions the top training reward
is biased upward — the winner is often a design that was lucky on those 300. This experiment runs
the search's family (`warm_start.candidates`, exactly as `search` builds it) on *every* question
of an `replay_<task>.yaml` split once, then for each reward point (`shape:lambda`) and each rule
picks a design from the train (or train + val) outcomes and reports its held-out test result:

- `train`: best mean reward on the training questions (the search before `warm_start_on`);
- `train_val`: best mean reward on train + val (`stage1.warm_start_on: train_val`, the default:
  the questions the fitted baselines and the decision model are chosen on);
- `one_se` (reference, not an option of the search): the cheapest design whose train + val reward
  is within one paired standard error of the best (Breiman's one-SE rule).

Only the search is measured (no stage 1): the learned policy runs its searched design on every
point, seed and query type of the frontier (docs/RESULTS.md), so the pick *is* the point.

With `--against FOLDER` (a `real_frontier` point folder: its `per_query.json` holds MoA's test
outcomes) it also reports how far any constant design of the family can get against the
MoA bar ("beats MoA's accuracy at under half MoA's cost"): the family's most accurate design on
the test questions among those under half MoA's test cost — chosen *on test*, an upper bound no
selection rule can exceed — and its paired gap to MoA (`eval/stats.paired_gap`).

    python -m experiments.warm_start_selection --task math_l5 --points hieramas:30 exp:1000
    # -> experiments/results/warm_start_selection_<task>.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

POINTS = {"math_l5": ("linear:0", "linear:10", "exp:30", "exp:100", "exp:1000", "hieramas:30", "hieramas:100",
                      "hieramas:300", "hieramas:3000"),
          "gsm8k": ("linear:0", "exp:1000", "exp:3000", "exp:10000", "exp:30000", "hieramas:30", "hieramas:100",
                    "hieramas:300", "hieramas:3000", "hieramas:30000"),
          "mmlu_redux": ("linear:0", "exp:100", "exp:300", "exp:1000", "hieramas:30", "hieramas:300", "hieramas:3000")}
RULES = ("train", "train_val", "one_se")


def pick(rewards, costs, names, rule_one_se: bool) -> int:
    """Index of the best mean reward (ties: cheaper, then the name); with `rule_one_se` the cheapest
    design within one paired standard error of that best."""

    mean = rewards.mean(1)
    best = min(range(len(names)), key=lambda i: (-mean[i], costs[i], names[i]))
    if not rule_one_se:
        return best
    se = (rewards[best][None, :] - rewards).std(1, ddof=1) / math.sqrt(rewards.shape[1])
    return min((i for i in range(len(names)) if mean[best] - mean[i] <= se[i]), key=lambda i: (costs[i], -mean[i]))


def moa_ceiling(folder: str, outcomes: dict, test_ids: list[str], held: slice) -> dict | None:
    """The family's most accurate test design under half MoA's test cost, and its paired gap to MoA
    (module docstring); None when no design is that cheap."""
    import numpy as np

    from hieramas_gnn.stats import paired_gap

    data = json.loads((Path(folder) / "per_query.json").read_text())
    where = {q: i for i, q in enumerate(data["question_ids"])}
    if set(where) != set(test_ids):
        raise SystemExit(f"--against {folder}: its questions are not this split's test questions")
    order = [where[q] for q in test_ids]
    moa_ok = np.asarray(data["methods"]["moa"]["correct"], dtype=float)[order]
    moa_cost = float(np.asarray(data["methods"]["moa"]["cost"], dtype=float)[order].mean())
    cheap = [d for d, (_, cost) in outcomes.items() if cost[held].mean() < moa_cost / 2]
    if not cheap:
        return None
    best = max(cheap, key=lambda d: (outcomes[d][0][held].mean(), -outcomes[d][1][held].mean()))
    gap = paired_gap(outcomes[best][0][held], moa_ok)
    return {"design": best.summary(), "accuracy": float(outcomes[best][0][held].mean()),
            "cost_usd": float(outcomes[best][1][held].mean()), "moa_accuracy": float(moa_ok.mean()),
            "moa_cost_usd": moa_cost, "gap": gap.gap, "band": 2 * gap.se, "p": gap.p_value, "designs_under_half": len(cheap)}


class FamilyRun:
    """The search family of `replay_<task>.yaml` run on every question of its seeded split, once:
    `outcomes[design] = (correct [Q], cost [Q])` over `questions` = train + val + test (in that
    order; `fit["train"]`, `fit["train_val"]` and `held` slice them), through the rollout cache."""

    def __init__(self, task: str, out: str, cache: str | None = None) -> None:
        from hieramas_gnn.config import load_config
        from hieramas_gnn.eval.experiment import CONFIGS
        from hieramas_gnn.paths import ensure_offline_defaults
        from hieramas_gnn.train import warm_start as W
        from hieramas_gnn.build import build_training, load_questions

        ensure_offline_defaults()
        run_dir = Path(out) / task
        run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = load_config(CONFIGS / f"replay_{task}.yaml", [
            f"cache.path={cache or run_dir / 'rollouts.sqlite'}", f"run.dir={run_dir}",
            f"policy.embed_cache={Path(out) / 'embeddings'}", "tracking.wandb=disabled"])
        self.setup = build_training(self.cfg)
        self.train, self.val, self.test, _ = load_questions(self.cfg)
        self.questions = [*self.train, *self.val, *self.test]
        n_fit = len(self.train) + len(self.val)
        self.fit = {"train": slice(0, len(self.train)), "train_val": slice(0, n_fit)}
        self.held = slice(n_fit, None)
        self.outcomes: dict = {}
        self.singles = W.single_designs(self.cfg, self.setup, self.cfg.pool.decision or None)
        self.run(self.singles)

    def run(self, designs) -> None:
        """Run the designs not run yet on every question."""
        import numpy as np

        new = [d for d in dict.fromkeys(designs) if d not in self.outcomes]
        qs = self.questions
        traces = self.setup.runner.run([(d, q) for d in new for q in qs]) if new else []
        for i, d in enumerate(new):
            ts = traces[i * len(qs):(i + 1) * len(qs)]
            self.outcomes[d] = (np.array([bool(t.correct) and not t.failed for t in ts], dtype=float),
                                np.array([float(t.cost_usd) for t in ts]))

    def rewards(self, point: str):
        """`design -> its reward [Q]` under the point `shape:lambda` (computed once per design)."""
        import numpy as np

        from hieramas_gnn.train.rewards import shape_reward

        shape, _, lam = point.partition(":")
        memo: dict = {}

        def reward(d):
            if d not in memo:
                memo[d] = np.array([shape_reward(bool(a), float(c), shape, float(lam))
                                    for a, c in zip(*self.outcomes[d])])
            return memo[d]
        return reward

    def family(self, reward, part: slice) -> list:
        """The search family built from the singles ranked on `part` by `reward(design)` -> [Q]
        (exactly as `warm_start.search` builds it), run on every question."""
        from hieramas_gnn.train import warm_start as W

        srows = [{"reward": float(reward(d)[part].mean()), "accuracy": float(self.outcomes[d][0][part].mean()),
                  "cost_usd": float(self.outcomes[d][1][part].mean())} for d in self.singles]
        fam = W.candidates(self.cfg, self.setup, srows, self.cfg.pool.decision or None, self.questions[0])
        self.run(fam)
        return fam


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from experiments.common import write_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="math_l5", choices=tuple(POINTS))
    p.add_argument("--points", nargs="+", help="reward points shape:lambda (default: the frontier's points)")
    p.add_argument("--out", default="runs/warm_start_selection", help="run folder (split, rollout cache)")
    p.add_argument("--cache", default=None, help="rollout cache (default: OUT/<task>/rollouts.sqlite)")
    p.add_argument("--results", default="experiments/results")
    p.add_argument("--against", default=None, help="a real_frontier point folder (per_query.json with moa)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    fam_run = FamilyRun(args.task, args.out, args.cache)
    cfg, outcomes = fam_run.cfg, fam_run.outcomes
    train, val, test, fit, held = fam_run.train, fam_run.val, fam_run.test, fam_run.fit, fam_run.held
    rows = []
    for point in args.points or POINTS[args.task]:
        rewards = fam_run.rewards(point)
        families = {}  # fit part -> the family built from the singles ranked on it (one_se reuses train_val's)
        for rule in RULES:
            name = "train" if rule == "train" else "train_val"
            part = fit[name]
            if name not in families:
                families[name] = fam_run.family(rewards, part)
            fam = families[name]
            rw = np.stack([rewards(d)[part] for d in fam])
            costs = [float(outcomes[d][1][part].mean()) for d in fam]
            i = pick(rw, costs, [d.summary() for d in fam], rule == "one_se")
            d = fam[i]
            rows.append({"point": point, "rule": rule, "design": d.summary(), "designs": len(fam),
                         "fit_reward": float(rw[i].mean()), "test_accuracy": float(outcomes[d][0][held].mean()),
                         "test_cost_usd": float(outcomes[d][1][held].mean())})
            print(f"{point:14s} {rule:9s} test {rows[-1]['test_accuracy']:.3f} @ {rows[-1]['test_cost_usd']:.2e}  "
                  f"{d.summary()}", flush=True)
    ceiling = moa_ceiling(args.against, outcomes, [q.id for q in test], held) if args.against else None
    out = {"task": args.task, "pool": cfg.pool.name, "n_train": len(train), "n_val": len(val), "n_test": len(test),
           "rows": rows, "moa_ceiling": ceiling, "wall_s": round(time.perf_counter() - t0, 1)}
    lines = [f"# Design search: which questions to rank on — {args.task} replay ({Path(cfg.pool.name).stem})", "",
             f"Command: `python -m experiments.warm_start_selection --task {args.task}`. The search family on the "
             f"seeded split of `replay_{args.task}.yaml` ({len(train)} train, {len(val)} val, {len(test)} test "
             "questions); each rule's pick and its result on the test questions (no stage 1: the frontier's "
             "points run their searched design).", "",
             "| point | rule | picked design | test acc | test $/query |", "|---|---|---|---:|---:|"]
    lines += [f"| {r['point']} | {r['rule']} | {r['design']} | {r['test_accuracy']:.3f} | {r['test_cost_usd']:.2e} |"
              for r in rows]
    if ceiling:
        c = ceiling
        lines += ["", f"MoA: {c['moa_accuracy']:.3f} at {c['moa_cost_usd']:.2e} $/query on the same test questions. "
                  f"The family's most accurate design under half that cost, **chosen on test** (an upper bound for "
                  f"any constant design of the family, {c['designs_under_half']} of {len(outcomes)} designs qualify): "
                  f"{c['design']}: {c['accuracy']:.3f} at {c['cost_usd']:.2e}, gap to MoA {c['gap']:+.3f} ± "
                  f"{c['band']:.3f} (paired 2 SE, p = {c['p']:.2f})."]
    write_results(args.results, f"warm_start_selection_{args.task}", out, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
