"""Does stage 2's chosen DAG beat a random DAG from the same candidate pool? A powered test.

Topology effects on the simulator are about one accuracy point (see
`experiments/topology_headroom.py`), the size of the noise of one run over 512 queries, so the
demo's single comparison cannot settle it. Here, per seed: train the stage-1 selector on the
demo's mixture config (`demo_mixtures.yaml`: two-proposer mixtures in every role), train stage 2 on `--train` queries (8 candidates × `--samples` runs each, with the demo's
`topology_classifier.resample`), then on the
held-out queries run the classifier's pick and a random candidate of the same pool `--runs`
times each (independent samples). The verdict is a paired test over queries: the per-query
difference of mean correctness, averaged over seeds and runs, with its standard error.

Run: .venv/bin/python -m experiments.stage2_vs_random --seeds 3 --out runs/stage2_vs_random
writes experiments/results/stage2_vs_random.json and .md (override with --results).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/stage2_vs_random", help="run folder (cache, stage-1 runs)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train", type=int, default=512, help="training queries (stage 1 and stage 2)")
    p.add_argument("--test", type=int, default=512, help="held-out queries")
    p.add_argument("--samples", type=int, default=2, help="runs per (query, candidate) in stage 2 data")
    p.add_argument("--runs", type=int, default=4, help="evaluation runs per held-out query and method")
    p.add_argument("--results", default="experiments/results")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)

    from experiments.common import demo_runs, train_selector
    from hieramas_gnn.policy.choose import DesignChooser
    from hieramas_gnn.build import choice_settings
    from hieramas_gnn.train.rewards import reward_function
    from hieramas_gnn.stats import paired_gap
    from hieramas_gnn.mas.runner import per_query_mean, run_repeated
    from hieramas_gnn.train import topology_classifier

    start = time.perf_counter()
    sizes = [f"task.train_size={args.train}", f"task.test_size={args.test}",
             f"topology.classifier.samples={args.samples}"]
    runs = demo_runs(args.out, [*sizes, *args.overrides])
    cfg0, test = runs.cfg0, runs.test
    diffs, per_seed = [], []
    for seed in range(args.seeds):
        cfg = runs.config(seed)
        setup, select, s2cfg = train_selector(cfg, runs.client)
        scorer = topology_classifier.PolicyGraphScorer(setup.policy, setup.builder)
        res, spent = topology_classifier.fit_classifier(scorer, select, setup.train, setup.val, setup.runner, reward_function(cfg.reward).of_trace,
                                       len(setup.builder.role_names), s2cfg, decision=setup.decision)
        chooser = DesignChooser(setup.policy, setup.builder, choice_settings(cfg, "classifier", setup.decision))
        chosen = chooser.designs(test)  # the one design-choice function, as eval/run/serve use it
        rand = chooser.with_route("random").designs(test)
        acc = {}
        for name, designs in (("stage2", chosen), ("random", rand)):
            traces = run_repeated(setup.runner, designs, test, args.runs)
            acc[name] = np.array(per_query_mean([float(bool(t.correct)) for t in traces], args.runs))  # [Q]
        diffs.append(acc["stage2"] - acc["random"])
        row = {"seed": seed, "stage2": round(float(acc["stage2"].mean()), 4),
               "random": round(float(acc["random"].mean()), 4),
               "sinks_stage2": round(float(np.mean([len(d.sinks()) for d in chosen])), 3),
               "sinks_random": round(float(np.mean([len(d.sinks()) for d in rand])), 3),
               "val_auc": round(float(res.best_val_auc), 3), "train_queries_informative": res.n_train_queries,
               "stage2_rollouts": spent}
        per_seed.append(row)
        print(row, flush=True)
    d = np.mean(diffs, axis=0)  # [Q] mean over seeds and runs
    g = paired_gap(d, np.zeros_like(d))
    se, gap = g.se, g.gap
    verdict = "BEATS" if gap > g.band else ("does NOT beat" if -gap > g.band else "TIES with")
    result = {"n": len(test), "seeds": args.seeds, "train_queries": args.train, "samples": args.samples,
              "overrides": args.overrides,
              "runs": args.runs, "decision": cfg0.pool.decision,
              "stage2": round(float(np.mean([r["stage2"] for r in per_seed])), 4),
              "random": round(float(np.mean([r["random"] for r in per_seed])), 4),
              "gap": round(gap, 4), "paired_se": round(se, 4), "verdict": f"stage 2 {verdict} a random candidate",
              "per_seed": per_seed, "wall_s": round(time.perf_counter() - start, 1)}
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "stage2_vs_random.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"| seed | stage 2 | random candidate | sinks (stage 2 / random) | val AUC | informative train queries |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['stage2']:.4f} | {r['random']:.4f} | {r['sinks_stage2']} / {r['sinks_random']} | "
              f"{r['val_auc']} | {r['train_queries_informative']} |" for r in per_seed]
    md = (f"# Stage 2 vs a random DAG from the same candidates\n\n"
          f"`python -m experiments.stage2_vs_random --seeds {args.seeds} --train {args.train} --samples "
          f"{args.samples} --runs {args.runs}{' --set ' + ' '.join(args.overrides) if args.overrides else ''}` "
          f"({result['wall_s']:.0f} s). {len(test)} held-out synthetic queries, "
          f"sim pool, decision model {cfg0.pool.decision}; each method run {args.runs} times per query.\n\n"
          + "\n".join(lines) + "\n\n"
          f"Mean: stage 2 {result['stage2']:.4f}, random candidate {result['random']:.4f}; paired gap "
          f"{gap:+.4f} ± {se:.4f} (SE over queries) → **stage 2 {verdict} a random candidate** "
          f"(two-SE rule).\n")
    (dest / "stage2_vs_random.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
