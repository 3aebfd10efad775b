"""A tiny real bundle in milliseconds, for tests, docs and the load test.

`sim_bundle(out_dir)` exports an untrained (seeded) policy over the synthetic task's first roles
and the `sim` pool, with a hashing embedder: every piece is the real one (roles that validate,
model strings the sim backend answers), only the weights are not learned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hieramas_gnn.bundle import export_policy
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task


def sim_bundle(out_dir: str | Path, *, route: str = "classifier", n_roles: int = 3, seed: int = 0,
               task: str = "synthetic", pool: str = "sim", embedder: Any = None) -> Path:
    """Export a seeded, untrained policy for `task` over `pool` to `out_dir`; returns the folder.
    `embedder`: the text embedder (default: a 32-wide hashing embedder, cached in memory)."""
    from hieramas_gnn.policy.choose import ChoiceSettings  # lazy: loads torch
    from hieramas_gnn.policy.features import (  # lazy: loads torch
        CachedEmbedder,
        FeatureBuilder,
        HashingEmbedder,
    )  # lazy: loads torch
    from hieramas_gnn.policy.graph import GraphBuilder  # lazy: loads torch
    from hieramas_gnn.policy.testing import toy_policy  # lazy: loads torch

    t = get_task(task)
    roleset = get_roleset(t.family)
    models = load_pool(pool)
    features = FeatureBuilder(embedder if embedder is not None else CachedEmbedder(HashingEmbedder(32)),
                              domain_vocab=[], pos_dim=4)
    builder = GraphBuilder(features, list(roleset.roles)[:n_roles], list(models.models))
    policy = toy_policy(builder, seed=seed).eval()
    decision = models.names[0]
    choice = ChoiceSettings(route=route, decision=decision, n_candidates=4, seed=seed)
    return export_policy(policy, out_dir, builder=builder, decision=decision, pool=models, pool_name=pool,
                         choice=choice, family=roleset.family, task=t.name,
                         training={"note": "untrained test bundle (hieramas_gnn.serve.testing.sim_bundle)"})
