"""The GNN policy: features (embeddings), graph building, `HieraPolicy`, sampling/re-scoring.

Typical use (see docs/POLICY.md)::

    from hieramas_gnn.policy import (FeatureBuilder, default_embedder, GraphBuilder,
                                     HieraPolicy, ArchConfig, sample)
    features = FeatureBuilder(default_embedder(cache_dir), domain_vocab=domains)
    builder = GraphBuilder(features, roles, pool.models)     # role / LLM features computed once
    policy = HieraPolicy(ArchConfig(k_proposers=2), features.dims)
    batch = builder.batch(questions)                          # G query graphs
    out = sample(policy, batch, decision="gpt-4o-mini", generator=torch.Generator().manual_seed(0))
    out.designs, out.log_prob, out.role_log_prob, out.entropy

Importing the package itself loads nothing (the run config imports `policy.settings` without
torch); each name above loads its submodule, and torch + torch_geometric, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    **dict.fromkeys(("CachedEmbedder", "Embedder", "FeatureBuilder", "HashingEmbedder", "InputDims", "LLMNode",
                     "MiniLMEmbedder", "default_embedder"), "features"),
    **dict.fromkeys(("HieraPolicy", "PolicyOut"), "gnn"),
    "ArchConfig": "settings",
    **dict.fromkeys(("GraphBuilder", "RoleNode", "build_graph", "dag_edge_index"), "graph"),
    **dict.fromkeys(("SampleOut", "dag_log_prob", "sample"), "sample"),
}
__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"hieramas_gnn.policy.{_HOME[name]}"), name)
    raise AttributeError(f"module 'hieramas_gnn.policy' has no attribute {name!r}")
