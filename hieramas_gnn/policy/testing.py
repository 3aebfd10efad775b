"""Small, deterministic policy setups for tests (hashing embedder, toy roles and pool).

`toy_builder(n_roles, n_models)` and `toy_policy(builder, **cfg)` give a `GraphBuilder` and a
`HieraPolicy` in milliseconds; `toy_queries(g)` gives G query texts with domains. Used by this
package's tests and available to the trainers' tests (no model download, no files).
"""

from __future__ import annotations

import torch

from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder, LLMNode
from hieramas_gnn.policy.gnn import HieraPolicy, ArchConfig
from hieramas_gnn.policy.graph import GraphBuilder, RoleNode

TOY_DOMAINS = ("algebra", "biology", "code")
_ROLE_WORDS = ("analyst", "solver", "critic", "planner", "coder", "verifier", "writer", "judge", "tutor")


def toy_roles(n: int) -> list[RoleNode]:
    return [RoleNode(f"role{i}", f"the {_ROLE_WORDS[i % len(_ROLE_WORDS)]} number {i} checks step {i}")
            for i in range(n)]


def toy_models(m: int) -> list[LLMNode]:
    return [LLMNode(f"model{j}", f"model {j}: a {'large' if j % 2 else 'small'} model, tier {j}",
                    1e-7 * (j + 1) ** 2, 4e-7 * (j + 1) ** 2) for j in range(m)]


def toy_queries(g: int) -> list[tuple[str, dict]]:
    return [(f"question {i}: compute {i} plus {2 * i}", {"domain": TOY_DOMAINS[i % len(TOY_DOMAINS)]})
            for i in range(g)]


def toy_builder(n_roles: int = 3, n_models: int = 4, dim: int = 32) -> GraphBuilder:
    features = FeatureBuilder(CachedEmbedder(HashingEmbedder(dim)), domain_vocab=TOY_DOMAINS, pos_dim=4)
    return GraphBuilder(features, toy_roles(n_roles), toy_models(n_models))


def toy_policy(builder: GraphBuilder, seed: int = 0, **cfg) -> HieraPolicy:
    options = {"hidden": 32, "layers": 2, "heads": 2} | cfg
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        return HieraPolicy(ArchConfig(**options), builder.dims)
