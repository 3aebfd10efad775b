"""Policy timings: embedding (MiniLM cold / warm cache), graph batching, forward, sample, re-score.

Run: `.venv/bin/python bench/bench_policy.py [--graphs 32] [--roles 4] [--models 6] [--repeat 5]`.
Prints one line per measurement (median seconds over `--repeat`). CPU only; numbers depend on the
machine and on how many other processes share it, so compare runs made on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, MiniLMEmbedder
from hieramas_gnn.policy.gnn import HieraPolicy, PolicyConfig
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=32)
    ap.add_argument("--roles", type=int, default=4)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ensure_offline_defaults()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    queries = toy_queries(args.graphs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cold = CachedEmbedder(MiniLMEmbedder(), tmp)
        builder = GraphBuilder(FeatureBuilder(cold, domain_vocab=["algebra", "biology", "code"]),
                               toy_roles(args.roles), toy_models(args.models))
        builder.batch(queries)
        print(f"minilm load + embed {args.roles + args.models + args.graphs} texts (cold): "
              f"{time.perf_counter() - t0:.3f}s")
        warm = CachedEmbedder(MiniLMEmbedder(), tmp)  # new process-like instance, disk cache only
        t0 = time.perf_counter()
        warm.embed([q for q, _ in queries])
        print(f"embed {args.graphs} queries from the disk cache (no model load): {time.perf_counter() - t0:.4f}s")
    policy = HieraPolicy(PolicyConfig(hidden=64, layers=2, k_proposers=2), builder.dims)
    batch = builder.batch(queries)
    gen = torch.Generator().manual_seed(0)
    print(f"batch {args.graphs} graphs (cached embeddings): {_median(lambda: builder.batch(queries), args.repeat):.4f}s")
    with torch.no_grad():
        print(f"forward all heads: {_median(lambda: policy(batch), args.repeat):.4f}s")
        out = sample(policy, batch, decision="model0", generator=gen)
        for mode in ("joint", "mixture"):
            kw = {"dags": [d.edges for d in out.designs]} if mode == "mixture" else {}
            t = _median(lambda: sample(policy, batch, decision="model0", mode=mode, generator=gen, **kw), args.repeat)
            r = _median(lambda: sample(policy, batch, decision="model0", mode=mode, designs=out.designs), args.repeat)
            print(f"sample {mode} G={args.graphs} N={args.roles} M={args.models}: {t:.4f}s; re-score: {r:.4f}s")
    t = _median(lambda: sample(policy, batch, decision="model0", generator=gen).log_prob.sum().backward(), args.repeat)
    print(f"sample joint + backward: {t:.4f}s")


if __name__ == "__main__":
    main()
