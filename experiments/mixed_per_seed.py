"""Per training seed of a mixed-task experiment folder (`hieramas experiment --out DIR`): the
learned policy's `accuracy_task_mean`, accuracy per component and cost, and its paired gap (task
mean weights, `stats.task_mean_weights`) against each baseline named. `results.json` keeps the mean
over seeds only; this re-evaluates each seed's bundle (`DIR/runs/seed<k>/policy`) on the same test
questions through the folder's rollout cache (the same calls, so the same answers as the
experiment's own evaluation, one run per question) and pairs it with the baselines' per-question
vectors in `DIR/per_query.json` (they do not depend on the seed).

    python -m experiments.mixed_per_seed runs/mixed/routerdc --against best_per_task router \
        [--out experiments/results/mixed/routerdc]      # prints markdown; --out: per_seed.{json,md}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def per_seed(folder: str | Path, against: list[str]) -> list[dict[str, Any]]:
    from experiments.common import folder_runner
    from hieramas_gnn import stats
    from hieramas_gnn.eval.experiment import evaluate_bundle, seed_config
    from hieramas_gnn.train.rewards import reward_function

    folder = Path(folder)
    results = json.loads((folder / "results.json").read_text())
    pq = json.loads((folder / "per_query.json").read_text())
    run = folder_runner(folder)
    config, pool, runner, test = run.config, run.pool, run.runner, run.test
    w = stats.task_mean_weights([str(c) for c in pq["components"]])
    out = []
    for seed in range(int(results["seeds"])):
        cfg = seed_config(config, folder, seed, results.get("overrides", []))
        rows, vecs, _ = evaluate_bundle(Path(cfg.run.dir) / "policy", test, runner, 1,
                                        reward_function(cfg.reward).of_trace, pool=pool,
                                        embed_cache=cfg.policy.embed_cache, control=False)
        row, mine = rows[0], np.asarray(vecs["hieramas"]["correct"], dtype=float)
        entry = {"seed": seed, "accuracy_task_mean": row["accuracy_task_mean"], "by_component": row["by_component"],
                 "cost_usd": row["cost_usd"], "pairs": {}}
        for other in against:
            g = stats.paired_gap(mine * w, np.asarray(pq["methods"][other]["correct"], dtype=float) * w)
            entry["pairs"][other] = {**g.to_dict(), "band": round(g.band, 4), "verdict": stats.word(g)}
        out.append(entry)
    return out


def markdown(rows: list[dict[str, Any]], against: list[str]) -> str:
    comps = sorted(rows[0]["by_component"])
    head = ["seed", "accuracy (task mean)", *comps, "$/query", *[f"vs {a} (paired, ± 2 SE)" for a in against]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        pairs = [f"{r['pairs'][a]['gap']:+.3f} ± {r['pairs'][a]['band']:.3f} ({r['pairs'][a]['verdict']})" for a in against]
        lines.append("| " + " | ".join([str(r["seed"]), f"{r['accuracy_task_mean']:.3f}",
                                         *[f"{r['by_component'][c]:.3f}" for c in comps],
                                         f"{r['cost_usd']:.2e}", *pairs]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--against", nargs="+", default=["best_per_task"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = per_seed(args.folder, args.against)
    md = markdown(rows, args.against)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "per_seed.json").write_text(json.dumps(rows, indent=2) + "\n")
        (out / "per_seed.md").write_text(f"# Per seed: {args.folder}\n\n" + md)


if __name__ == "__main__":
    main()
