"""How much can choosing a topology gain at all? The ceiling stage 2 is measured against.

For one seed: train the stage-1 selector on the demo's mixture config (`demo_mixtures.yaml`:
two-proposer mixtures in every role, as `hieramas demo` trained it before its per-cluster warm
start), freeze it, then on
held-out queries run each of K candidate DAGs (stage 2's generator) S times (independent
samples, `sample_index` 0..S-1). Per (query, candidate) this estimates the expected accuracy of
that topology on that query. Reported:

* `random_candidate`: mean over candidates (what a random DAG from the pool gets);
* `oracle_split`: per query, the candidate with the best mean on the first half of the
  samples, scored on the second half (an honest ceiling: no selection bias);
* `best_fixed`: one structural class (e.g. "2 sinks") chosen on the first half, for every query;
* how accuracy varies with structure (number of sinks, edges, depth, which role is a sink).

Run: .venv/bin/python -m experiments.topology_headroom --out runs/headroom [--n 128 --samples 8]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def structure(edges, n: int) -> dict:
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    sinks = [v for v in g if g.out_degree(v) == 0]
    return {"sinks": len(sinks), "edges": len(edges), "depth": nx.dag_longest_path_length(g),
            "sink_set": tuple(sorted(sinks))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/headroom")
    p.add_argument("--n", type=int, default=128, help="held-out queries")
    p.add_argument("--samples", type=int, default=8, help="independent runs per (query, candidate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", default=None)
    p.add_argument("--fixed-mixture", default=None,
                   help="'proposer1,proposer2:synthesizer' in every role instead of the stage-1 selector")
    p.add_argument("--results", default=None, help="write the summary JSON here")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)

    from experiments.common import demo_runs, train_selector
    from hieramas_gnn.mas.design import Mixture
    from hieramas_gnn.train import topology_classifier
    from hieramas_gnn.build import build_training

    start = time.perf_counter()
    runs = demo_runs(args.out, args.overrides, pool=args.pool)
    cfg, test = runs.config(args.seed), runs.test[: args.n]
    if args.fixed_mixture:
        props, synth = args.fixed_mixture.split(":")
        setup = build_training(cfg, client=runs.client)
        s2cfg = topology_classifier.ClassifierTraining.from_topology(cfg.topology, cfg.run.seed_for("stage2"))
        select = topology_classifier.fixed_mixtures(setup.builder.role_names, Mixture(tuple(props.split(",")), synth),
                                       setup.decision)
    else:
        setup, select, s2cfg = train_selector(cfg, runs.client)
    n_roles = len(setup.builder.role_names)
    propose = topology_classifier.random_proposer(n_roles, s2cfg)
    cands = [propose(q) for q in test]
    pairs = [(q, e) for q, es in zip(test, cands) for e in es]
    designs = select([q for q, _ in pairs], [e for _, e in pairs])
    jobs = list(zip(designs, [q for q, _ in pairs]))
    correct = np.zeros((len(jobs), args.samples))
    cost = np.zeros((len(jobs), args.samples))
    for s in range(args.samples):
        setup.runner.sample_index = s
        traces = setup.runner.run(jobs)
        correct[:, s] = [bool(t.correct) for t in traces]
        cost[:, s] = [float(t.cost_usd) for t in traces]
        print(f"sample {s}: acc {correct[:, s].mean():.4f}", flush=True)

    k = len(cands[0])
    acc = correct.reshape(len(test), k, args.samples)  # [Q, K, S]
    half = args.samples // 2
    first, second = acc[:, :, :half].mean(-1), acc[:, :, half:].mean(-1)  # [Q, K]
    pick = first.argmax(1)
    oracle_split = float(second[np.arange(len(test)), pick].mean())
    per_q_spread = acc.mean(-1).max(1) - acc.mean(-1).min(1)
    by = defaultdict(lambda: defaultdict(list))
    for qi, es in enumerate(cands):
        for ki, e in enumerate(es):
            st = structure(e, n_roles)
            for key in ("sinks", "edges", "depth", "sink_set"):
                by[key][str(st[key])].append((acc[qi, ki, :half].mean(), acc[qi, ki, half:].mean()))
    structural = {key: {v: {"n": len(xs), "acc": round(float(np.mean([a + b for a, b in xs]) / 2), 4)}
                        for v, xs in sorted(vals.items())} for key, vals in by.items()}
    best_fixed = {}
    for key, vals in by.items():
        best = max(vals, key=lambda v: np.mean([a for a, _ in vals[v]]))
        best_fixed[key] = {"value": best, "acc_second_half": round(float(np.mean([b for _, b in vals[best]])), 4)}
    summary = {
        "n_queries": len(test), "candidates": k, "samples": args.samples, "seed": args.seed,
        "selector": args.fixed_mixture or "stage1",
        "random_candidate": round(float(acc.mean()), 4),
        "random_candidate_second_half": round(float(acc[:, :, half:].mean()), 4),
        "oracle_split": round(oracle_split, 4),
        "queries_with_spread_ge_0.25": int((per_q_spread >= 0.25).sum()),
        "mean_spread": round(float(per_q_spread.mean()), 4),
        "best_fixed_structure": best_fixed,
        "structure": structural,
        "cost_mean": float(cost.mean()),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary, indent=2))
    if args.results:
        Path(args.results).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
