"""Stage-2 candidate scoring at inference: K = 200 candidate DAGs for one query, and for 64 queries.

What the `classifier` route of `policy.choose.DesignChooser` does per query (`DesignChooser.scored`,
the product's one design-choice rule), timed in its two parts: the stage-1 selector's greedy
mixtures on each of the K DAGs (`select`: one batch of the K graphs built by
`GraphBuilder.repeated`, one encoder pass, the mixture head) and the graph-score head on those
designs (`score`: the score head on the selector's encoding, no second batch or encoder pass). The
policy is the 5-role, 6-model mixture policy of `bench/_setup.py` (untrained weights: scoring time
does not depend on their values); the K DAGs are one fixed draw of `candidate_dags`.

Times are process CPU milliseconds (all threads), which a loaded machine distorts less than
wall time.

1. `one_query`: K = 200 for one query, median of `repeat` runs, at torch's default thread count
   (`torch_threads`). Target <= 20 ms per query.
2. `one_query_1_thread`: the same with one torch thread (on the 2-core machine shared by other
   jobs, a second intra-op thread mostly spins: several times the CPU for these small graphs).
3. `batch_64`: K = 200 for each of 64 queries (each query decided on its own, as the route does),
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


def _score(chooser: Any, questions: list[Any], dags: list[Any]) -> tuple[float, float]:
    """(select, score) CPU ms of the K designs of every question, each question on its own (CPU
    time of the process, all threads: on a loaded machine wall time measures the neighbours).
    The steps of `DesignChooser.scored`, timed apart."""
    from hieramas_gnn.policy.graph import dag_edge_index
    from hieramas_gnn.policy.sample import sample

    policy, builder, decision = chooser.policy, chooser.builder, chooser.settings.decision
    select = score = 0.0
    with torch.no_grad():
        for q in questions:
            t0 = time.process_time()
            batch = builder.repeated(q, dags)
            out = sample(policy, batch, decision=decision, mode="mixture", dags=list(dags), greedy=True)
            t1 = time.process_time()
            logits = policy.score_head(out.encoded, dag_edge_index(batch, [d.edges for d in out.designs]))  # [K]
            _best = int(logits.argmax())
            t2 = time.process_time()
            select, score = select + (t1 - t0), score + (t2 - t1)
    return select * 1000, score * 1000


def _one(chooser: Any, queries: list[Any], dags: list[Any], repeat: int) -> dict[str, Any]:
    one = [_score(chooser, [queries[i % len(queries)]], dags) for i in range(repeat)]
    median = statistics.median(sum(t) for t in one)
    return {"ms": round(median, 2), "select_ms": round(statistics.median(t[0] for t in one), 2),
            "score_ms": round(statistics.median(t[1] for t in one), 2), "repeat": repeat,
            "target": f"<= {TARGET_MS:g} ms", "ok": median <= TARGET_MS}


def run(quick: bool = False) -> dict:
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
    from hieramas_gnn.train.topology_classifier import (
        ClassifierTraining,
        candidate_dags,
    )

    ensure_offline_defaults()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(Path(tmp), n_train=64)
    setup = trainer.setup
    policy, builder = setup.policy.eval(), setup.builder
    chooser = DesignChooser(policy, builder, ChoiceSettings(route="classifier", decision=setup.decision, n_candidates=K))
    dags = candidate_dags(5, K, np.random.default_rng(0), ClassifierTraining())
    queries = list(setup.train[:2 if quick else 64])
    designs, logits = chooser.scored(queries[0], dags)  # warm-up (embeddings, kernels); the steps timed are its own
    again = _score(chooser, queries[:1], dags[:8])
    assert again and len(designs) == len(dags) == logits.numel()
    repeat = 1 if quick else 9
    threads = torch.get_num_threads()
    one = _one(chooser, queries, dags, repeat)
    torch.set_num_threads(1)
    try:
        one_1 = _one(chooser, queries, dags, repeat)
    finally:
        torch.set_num_threads(threads)
    batch_sel, batch_score = _score(chooser, queries, dags)
    return {
        "k": len(dags), "roles": 5, "models": 6, "torch_threads": threads, "encoder_passes_per_query": 1,
        "one_query": one, "one_query_1_thread": one_1,
        f"batch_{len(queries)}": {"queries": len(queries), "total_ms": round(batch_sel + batch_score, 1),
                                  "select_ms": round(batch_sel, 1), "score_ms": round(batch_score, 1),
                                  "ms_per_query": round((batch_sel + batch_score) / len(queries), 2)},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
