"""How far can the design space reach at all? Fixed simple designs on replay, train + val vs test.

The learned policy chooses Designs: roles (each a mixture of proposers + a synthesizer, or
skipped), edges, and a decision model that reads the nodes (a unanimous answer is taken without
a decision call). This experiment runs a family of *fixed* designs of that space on every
question of an `replay_<task>.yaml` split — every single model, every vote of 2 and of 3
one-proposer roles (decision = the split's best single model, called only on disagreement), and a
3-proposer mixture of the top models — and reports each design's accuracy and cost on train + val
and on test. Two numbers come out of it:

- the space's ceiling on test (the most accurate fixed design, chosen *on test*: an upper bound
  for any constant choice), and
- the design a perfect learner of one constant design would pick on train + val, and its test
  result: what the learned policy can at best do without per-query routing,

both against the plurality vote of the whole pool, which is not in the design space when the
pool has more models than the role set has roles (a design's decision is an LLM call, not a count).

    python -m experiments.design_space_ceiling --task math_l5     # -> experiments/results/design_space_<task>.md
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from experiments.common import write_results


def main(argv: list[str] | None = None) -> int:
    import asyncio

    from hieramas_gnn.config import load_config
    from hieramas_gnn.eval import baselines as B
    from hieramas_gnn.eval.experiment import CONFIGS
    from hieramas_gnn.mas.design import Design, Mixture
    from hieramas_gnn.mas.runner import ExecutorRunner, summarize
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, load_roles, make_client

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="math_l5", choices=("math_l5", "gsm8k", "mmlu_redux"))
    p.add_argument("--cache", default="runs/real/{task}/rollouts.sqlite")
    p.add_argument("--results", default="experiments/results")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    t0 = time.perf_counter()
    cfg = load_config(CONFIGS / f"replay_{args.task}.yaml", [f"cache.path={args.cache.format(task=args.task)}"])
    train, val, test, task = load_questions(cfg)
    roleset, _ = load_roles(cfg, task)
    pool, _ = load_models(cfg)
    runner = ExecutorRunner(make_client(ClientSettings.from_config(cfg), pool), task, roleset, max_in_flight=64)
    roles = tuple(roleset.names)
    fit = train + val

    def measure(design: Design) -> dict:
        rows = {}
        for split, qs in (("fit", fit), ("test", test)):
            r = summarize("x", runner.run([(design, q) for q in qs]))
            rows[split] = {"accuracy": r["accuracy"], "cost_usd": r["cost_usd"]}
        return rows

    def lone(models: tuple[str, ...], decision: str) -> Design:
        mixes = tuple(Mixture((m,), m) for m in models) + (None,) * (len(roles) - len(models))
        return Design(roles, mixes, (), decision, "all")

    singles = {m: measure(lone((m,), m)) for m in pool.names}
    best = max(pool.names, key=lambda m: (singles[m]["fit"]["accuracy"], -singles[m]["fit"]["cost_usd"]))
    designs = {f"single {m}": r for m, r in singles.items()}
    for k in range(2, min(3, len(roles)) + 1):
        for combo in itertools.combinations(pool.names, k):
            designs[f"vote of {k} [{', '.join(combo)}] -> {best}"] = measure(lone(combo, best))
    top = sorted(pool.names, key=lambda m: -singles[m]["fit"]["accuracy"])[:3]
    moa = Design(roles, (Mixture(tuple(top), best),) + (None,) * (len(roles) - 1), (), best, "all")
    designs[f"moa 3 [{', '.join(top)}] -> {best}"] = measure(moa)

    bl = B.Baselines(task, roleset, pool.names, B.BaselineConfig(seed=0, anchor=best))
    vote = {}
    for split, qs in (("fit", fit), ("test", test)):
        traces = asyncio.run(B.run_baselines(bl, ["vote"], qs, runner.client, max_in_flight=64))["vote"]
        r = summarize("vote", traces)
        vote[split] = {"accuracy": r["accuracy"], "cost_usd": r["cost_usd"]}
    ceiling = max(designs, key=lambda d: designs[d]["test"]["accuracy"])
    chosen = max(designs, key=lambda d: (designs[d]["fit"]["accuracy"], -designs[d]["fit"]["cost_usd"]))
    out = {"task": args.task, "pool": cfg.pool.name, "roles": list(roles), "n_fit": len(fit), "n_test": len(test),
           "decision": best, "designs": designs, "vote_of_pool": vote, "ceiling_on_test": ceiling,
           "best_on_fit": chosen, "wall_s": round(time.perf_counter() - t0, 1)}
    lines = [f"# Design-space ceiling: {args.task} replay ({Path(cfg.pool.name).stem})", "",
             f"Command: `python -m experiments.design_space_ceiling --task {args.task}`. {len(designs)} fixed designs "
             f"of the policy's space on the seeded split of `replay_{args.task}.yaml` ({len(fit)} train + val, "
             f"{len(test)} test questions); decision model {best} (best single on train + val), called only "
             "when the nodes disagree.", "",
             f"- plurality vote of all {len(pool.names)} models (not a design of this space): test "
             f"{vote['test']['accuracy']:.3f} at {vote['test']['cost_usd']:.2e} $/query",
             f"- the space's most accurate fixed design **on test** (an upper bound for any constant choice): "
             f"{ceiling}: {designs[ceiling]['test']['accuracy']:.3f} at {designs[ceiling]['test']['cost_usd']:.2e}",
             f"- the design a perfect learner would pick on train + val: {chosen}: test "
             f"{designs[chosen]['test']['accuracy']:.3f} at {designs[chosen]['test']['cost_usd']:.2e}", "",
             "| design | train + val acc | $/query | test acc | $/query |", "|---|---:|---:|---:|---:|"]
    for name, r in sorted(designs.items(), key=lambda kv: -kv[1]["test"]["accuracy"])[:15]:
        lines.append(f"| {name} | {r['fit']['accuracy']:.3f} | {r['fit']['cost_usd']:.2e} | "
                     f"{r['test']['accuracy']:.3f} | {r['test']['cost_usd']:.2e} |")
    write_results(args.results, f"design_space_{args.task}", out, "\n".join(lines))
    print("\n".join(lines[:8]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
