"""The GNN policy: features (embeddings), graph building, `HieraPolicy`, sampling/re-scoring.

Typical use (see docs/POLICY.md)::

    from hieramas_gnn.policy import (FeatureBuilder, default_embedder, GraphBuilder,
                                     HieraPolicy, PolicyConfig, sample)
    features = FeatureBuilder(default_embedder(cache_dir), domain_vocab=domains)
    builder = GraphBuilder(features, roles, pool.models)     # role / LLM features computed once
    policy = HieraPolicy(PolicyConfig(k_proposers=2), features.dims)
    batch = builder.batch(questions)                          # G query graphs
    out = sample(policy, batch, decision="gpt-4o-mini", generator=torch.Generator().manual_seed(0))
    out.designs, out.log_prob, out.role_log_prob, out.entropy

Importing this package imports torch and torch_geometric (the submodules do the work; nothing
loads a model until an embedding is requested).
"""

from hieramas_gnn.policy.features import (
    CachedEmbedder, Embedder, FeatureBuilder, HashingEmbedder, InputDims, LLMNode, MiniLMEmbedder,
    default_embedder,
)
from hieramas_gnn.policy.gnn import HieraPolicy, PolicyConfig, PolicyOut
from hieramas_gnn.policy.graph import GraphBuilder, RoleNode, build_graph, dag_edge_index
from hieramas_gnn.policy.sample import SampleOut, dag_log_prob, sample

__all__ = [
    "CachedEmbedder", "Embedder", "FeatureBuilder", "HashingEmbedder", "InputDims", "LLMNode",
    "MiniLMEmbedder", "default_embedder", "HieraPolicy", "PolicyConfig", "PolicyOut", "GraphBuilder",
    "RoleNode", "build_graph", "dag_edge_index", "SampleOut", "dag_log_prob", "sample",
]
