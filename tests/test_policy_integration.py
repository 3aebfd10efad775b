"""The policy on the project's real pieces: the `sim` pool, a role set, task questions, Designs."""

from __future__ import annotations

import torch

from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder
from hieramas_gnn.policy.gnn import HieraPolicy, ArchConfig
from hieramas_gnn.policy.graph import GraphBuilder
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.tasks import get_task


def _setup():
    pool = load_pool("sim")
    roleset = get_roleset("synthetic")
    questions = get_task("synthetic").load(None, "test", limit=4)
    domains = sorted({q.meta["domain"] for q in questions})
    features = FeatureBuilder(CachedEmbedder(HashingEmbedder(16)), domain_vocab=domains)
    builder = GraphBuilder(features, roleset.roles, list(pool.models))
    return pool, roleset, questions, builder


def test_graph_builder_reads_role_sets_pools_and_questions():
    pool, roleset, questions, builder = _setup()
    batch = builder.batch(questions)
    assert builder.role_names == list(roleset.names) and builder.llm_names == list(pool.names)
    assert batch["role"].x.shape == (4 * len(roleset.roles), builder.dims.role)
    assert batch["llm"].x.shape == (4 * len(pool.models), builder.dims.llm)
    assert int(batch["query"].x[:, 16:].sum()) == 4  # every question has a known domain


def test_sampled_designs_validate_against_the_role_set_and_pool():
    pool, roleset, questions, builder = _setup()
    policy = HieraPolicy(ArchConfig(hidden=16, heads=2), builder.dims)
    out = sample(policy, builder.batch(questions), decision=pool.names[0],
                 generator=torch.Generator().manual_seed(0))
    for design in out.designs:
        design.validate(roleset, pool)
        assert design.to_dict() and type(design).from_dict(design.to_dict()) == design
