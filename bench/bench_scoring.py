"""Stage-2 candidate scoring at inference: K = 200 candidate DAGs for one query, and for 64 queries.

What `train.topology_classifier.choose_designs` does per query, timed in its two parts: the stage-1
selector's greedy mixtures on each of the K DAGs (`policy_selector`: graph building + policy
forward) and the graph-score head on the K designs (`PolicyGraphScorer.score_logits`, with a
fresh scorer so no encoding is cached). The policy is the 5-role, 6-model mixture policy of
`bench/_setup.py` (untrained weights: scoring time does not depend on their values).

Times are process CPU milliseconds (all threads), which a loaded machine distorts less than
wall time.

1. `one_query`: K = 200 for one query, median of `repeat` runs. Target <= 20 ms per query.
2. `batch_64`: K = 200 for each of 64 queries in one batched call (64 x 200 = 12,800 graphs),
   total and per query.

`run(quick)` returns the figures; `python -m bench.bench_scoring [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench._setup import make_trainer

K = 200
TARGET_MS = 20.0


def _score(policy: Any, builder: Any, decision: str, questions: list[Any], dags: list[Any]) -> tuple[float, float]:
    """(select, score) CPU ms of the K designs of every question in one batched call (CPU time of
    the process, all threads: on a loaded machine wall time measures the neighbours)."""
    from hieramas_gnn.train.topology_classifier import PolicyGraphScorer, policy_selector

    qs = [q for q in questions for _ in dags]
    all_dags = list(dags) * len(questions)
    select = policy_selector(policy, builder, decision)
    t0 = time.process_time()
    cands = select(qs, all_dags)
    t1 = time.process_time()
    with torch.no_grad():
        logits = PolicyGraphScorer(policy, builder).score_logits(qs, cands)  # [len(qs)]
        _best = logits.view(len(questions), len(dags)).argmax(dim=1)  # [Q]
    t2 = time.process_time()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def run(quick: bool = False) -> dict:
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.topology_classifier import ClassifierTraining, candidate_dags

    ensure_offline_defaults()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(Path(tmp), n_train=64)
    setup = trainer.setup
    policy, builder = setup.policy.eval(), setup.builder
    dags = candidate_dags(5, K, np.random.default_rng(0), ClassifierTraining())
    queries = list(setup.train[:2 if quick else 64])
    _score(policy, builder, setup.decision, queries[:1], dags[:8])  # warm-up (embeddings, kernels)
    repeat = 1 if quick else 9
    one = [_score(policy, builder, setup.decision, [queries[i % len(queries)]], dags) for i in range(repeat)]
    total = [sum(t) for t in one]
    batch_sel, batch_score = _score(policy, builder, setup.decision, queries, dags)
    median = statistics.median(total)
    return {
        "k": len(dags), "roles": 5, "models": 6, "torch_threads": torch.get_num_threads(),
        "one_query": {"ms": round(median, 2), "select_ms": round(statistics.median(t[0] for t in one), 2),
                      "score_ms": round(statistics.median(t[1] for t in one), 2), "repeat": repeat,
                      "target": f"<= {TARGET_MS:g} ms", "ok": median <= TARGET_MS},
        f"batch_{len(queries)}": {"queries": len(queries), "total_ms": round(batch_sel + batch_score, 1),
                                  "select_ms": round(batch_sel, 1), "score_ms": round(batch_score, 1),
                                  "ms_per_query": round((batch_sel + batch_score) / len(queries), 2)},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
