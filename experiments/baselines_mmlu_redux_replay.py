"""Full MMLU-Redux replay check: `hieramas baselines` single/vote/oracle vs the real outcome table.

    .venv/bin/python experiments/baselines_mmlu_redux_replay.py [--limit N] \
        [--out experiments/results/baselines_mmlu_redux_replay.json]

Runs `single:<m>` for the 14 HELM models, `vote` and `oracle` over all 5,700 MMLU-Redux
questions through the real LLM client with the `replay/` provider and no cache (pure CPU), with
`vote_order` = the models by accuracy in the table (the tie rule of `hieramas outcomes inspect`).
Writes the `hieramas baselines` JSON plus a `check` section: each figure next to the one
`hieramas outcomes inspect` computes from the table, the largest difference, the spend seen by
the client vs the sum of per-call costs in the traces, and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from hieramas_gnn.backends.outcomes import summarize
from hieramas_gnn.backends.replay import read_outcome_table
from hieramas_gnn.eval.baselines import (BaselineConfig, Baselines, expand_methods, result_rows,
                                         run_baselines)
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.paths import ensure_offline_defaults, shared_data_dir
from hieramas_gnn.tasks import get_task

TABLE = "outcomes/mmlu_redux_helm14.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default="experiments/results/baselines_mmlu_redux_replay.json")
    args = ap.parse_args()
    ensure_offline_defaults()
    task, pool = get_task("mmlu_redux"), load_pool("replay-mmlu-redux")
    questions = task.load(limit=args.limit)
    df = read_outcome_table(shared_data_dir() / TABLE)
    df = df[df["question_id"].isin({q.id for q in questions})]
    table = summarize(df)
    order = tuple(m["model"] for m in table["models"])
    baselines = Baselines(task, get_roleset(task.family), pool.names, BaselineConfig(vote_order=order))
    client = LLMClient(pool, None, ClientConfig(max_concurrency=64, per_model_concurrency=64))
    methods = expand_methods(["single", "vote", "oracle"], pool.names)
    t0 = time.perf_counter()
    traces = asyncio.run(run_baselines(baselines, methods, questions, client, max_in_flight=64))
    wall = time.perf_counter() - t0
    rows = result_rows(traces)
    acc = {r["method"]: r["accuracy"] for r in rows}
    pairs = [(f"single:{m['model']}", acc[f"single:{m['model']}"], m["accuracy"]) for m in table["models"]]
    pairs += [("vote", acc["vote"], table["plurality"]["accuracy"]),
              ("oracle", acc["oracle"], table["oracle"]["accuracy"])]
    paid = [c for ts in traces.values() for t in ts for c in t.calls if not c.cache_hit]
    report = {
        "task": task.name, "backend": "replay", "n": len(questions), "results": rows,
        "check": {
            "against": f"hieramas outcomes inspect {TABLE} (restricted to these questions)",
            "vote_tie_rule": "vote_order = models by table accuracy (inspect's rule)",
            "pairs": [{"method": m, "baselines": a, "table": b} for m, a, b in pairs],
            "max_abs_diff": max(abs(a - b) for _, a, b in pairs),
            "client_calls": client.stats.calls, "paid_calls_in_traces": len(paid),
            "client_spent_usd": client.stats.spent_usd,
            "paid_cost_in_traces_usd": sum(c.cost_usd for c in paid),
            "failed_episodes": sum(t.failed for ts in traces.values() for t in ts),
            "wall_s": round(wall, 1),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["check"], indent=2))


if __name__ == "__main__":
    main()
