"""Policy timings: embedding (MiniLM cold / warm cache), graph batching, forward, sample, re-score.

Run: `python -m bench.run --only policy` (or `.venv/bin/python -m bench.bench_policy [--graphs 32] ...`).
One figure per measurement (median seconds over `--repeat`). CPU only; numbers depend on the
machine and on how many other processes share it, so compare runs made on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder, MiniLMEmbedder
from hieramas_gnn.policy.gnn import HieraPolicy, ArchConfig
from hieramas_gnn.policy.graph import GraphBuilder
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.policy.testing import toy_models, toy_queries, toy_roles


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False, graphs: int = 32, roles: int = 4, models: int = 6, repeat: int = 5) -> dict:
    """Median seconds per step (the `bench.run` entry point); `quick` shrinks the sizes."""
    if quick:
        graphs, repeat = 8, 2
    ensure_offline_defaults()
    queries = toy_queries(graphs)
    res: dict = {"graphs": graphs, "roles": roles, "models": models, "repeat": repeat}
    # --quick (a smoke test) embeds with the hashing embedder: loading MiniLM is most of the CPU
    # of this benchmark and is tested in tests/test_policy_features.py
    embedder = HashingEmbedder if quick else MiniLMEmbedder
    res["embedder"] = embedder.__name__
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cold = CachedEmbedder(embedder(), tmp)
        builder = GraphBuilder(FeatureBuilder(cold, domain_vocab=["algebra", "biology", "code"]),
                               toy_roles(roles), toy_models(models))
        builder.batch(queries)
        res["minilm_load_and_embed_cold_s" if not quick else "embed_cold_s"] = round(time.perf_counter() - t0, 3)
        warm = CachedEmbedder(embedder(), tmp)  # new process-like instance, disk cache only
        t0 = time.perf_counter()
        warm.embed([q for q, _ in queries])
        res["embed_queries_from_disk_cache_s"] = round(time.perf_counter() - t0, 4)
    policy = HieraPolicy(ArchConfig(hidden=64, layers=2, k_proposers=2), builder.dims)
    batch = builder.batch(queries)
    gen = torch.Generator().manual_seed(0)
    res["batch_graphs_s"] = round(_median(lambda: builder.batch(queries), repeat), 4)
    with torch.no_grad():
        res["forward_all_heads_s"] = round(_median(lambda: policy(batch), repeat), 4)
        out = sample(policy, batch, decision="model0", generator=gen)
        for mode in ("joint", "mixture"):
            kw = {"dags": [d.edges for d in out.designs]} if mode == "mixture" else {}
            res[f"sample_{mode}_s"] = round(_median(
                lambda: sample(policy, batch, decision="model0", mode=mode, generator=gen, **kw), repeat), 4)
            res[f"rescore_{mode}_s"] = round(_median(
                lambda: sample(policy, batch, decision="model0", mode=mode, designs=out.designs), repeat), 4)
    res["sample_joint_backward_s"] = round(_median(
        lambda: sample(policy, batch, decision="model0", generator=gen).log_prob.sum().backward(), repeat), 4)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=32)
    ap.add_argument("--roles", type=int, default=4)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for key, value in run(False, args.graphs, args.roles, args.models, args.repeat).items():
        print(f"{key:<36} {value}")


if __name__ == "__main__":
    main()
