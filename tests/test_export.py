"""Policy bundles: round trip, version and pool checks."""

from __future__ import annotations

import json

import pytest
import torch

from hieramas_gnn.errors import UserError
from hieramas_gnn.bundle import BUNDLE_VERSION, export_policy, load_policy, read_meta
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries
from tests.test_bundle_integrity import rewrite_checksums


@pytest.fixture
def bundle(tmp_path):
    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, conv="gat", k_proposers=3).eval()
    out = export_policy(policy, tmp_path / "bundle", builder=builder, decision="model2",
                        pool_name="toy", extra={"task": "synthetic"})
    return builder, policy, out


def test_round_trip_gives_identical_outputs(bundle):
    builder, policy, out = bundle
    loaded, meta = load_policy(out)
    batch = builder.batch(toy_queries(3), dags=[[(0, 1)], [], [(2, 1)]])
    a, b = policy(batch), loaded(batch)
    for field in ("proposer", "synthesizer", "skip", "order", "edge", "graph"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_round_trip_samples_the_same_designs(bundle):
    builder, policy, out = bundle
    loaded, meta = load_policy(out)
    batch = meta.graph_builder().batch(toy_queries(4))
    a = sample(policy, batch, decision=meta.decision, generator=torch.Generator().manual_seed(5))
    b = sample(loaded, batch, decision=meta.decision, generator=torch.Generator().manual_seed(5))
    assert a.designs == b.designs


def test_meta_records_config_pool_roles_and_embedder(bundle):
    builder, policy, out = bundle
    meta = read_meta(out)
    assert meta.version == BUNDLE_VERSION and meta.policy_config["conv"] == "gat"
    assert meta.model_names == builder.llm_names and meta.role_names == builder.role_names
    assert meta.embedder == "hashing-32" and meta.embedding_dim == 32
    assert meta.decision == "model2" and meta.pool_name == "toy" and meta.extra == {"task": "synthetic"}


def test_rebuilt_graph_builder_gives_the_same_features(bundle):
    builder, _, out = bundle
    rebuilt = read_meta(out).graph_builder()
    assert torch.equal(rebuilt.role_x, builder.role_x) and torch.equal(rebuilt.llm_x, builder.llm_x)


def test_wrong_version_is_refused(bundle):
    _, _, out = bundle
    meta = json.loads((out / "policy.json").read_text())
    meta["version"] = BUNDLE_VERSION + 1
    (out / "policy.json").write_text(json.dumps(meta))
    rewrite_checksums(out)  # an intact bundle of another version, not a damaged one
    with pytest.raises(UserError, match="version"):
        load_policy(out)


def test_mismatched_pool_is_refused_with_the_differences(bundle):
    _, _, out = bundle
    with pytest.raises(UserError, match=r"missing \['model3'\], extra \['gpt-x'\]"):
        load_policy(out, pool=["model0", "model1", "model2", "gpt-x"])


def test_matching_pool_and_roles_are_accepted(bundle):
    builder, policy, out = bundle
    loaded, meta = load_policy(out, pool=builder.models, roles=builder.roles)
    assert meta.model_names == builder.llm_names and meta.role_names == builder.role_names
    saved, got = policy.state_dict(), loaded.state_dict()
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k]) for k in saved)
    assert not loaded.training


def test_mismatched_roles_are_refused(bundle):
    _, _, out = bundle
    with pytest.raises(UserError, match="roles"):
        load_policy(out, roles=["role0", "role1"])


def test_a_folder_without_a_bundle_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a policy bundle"):
        load_policy(tmp_path)


def test_another_embedder_is_refused(bundle):
    from hieramas_gnn.policy.features import HashingEmbedder
    _, _, out = bundle
    with pytest.raises(UserError, match="hashing-16"):
        read_meta(out).graph_builder(embedder=HashingEmbedder(16))


def test_the_same_policy_exports_to_byte_identical_bundles(bundle, tmp_path):
    builder, policy, out = bundle
    again = [export_policy(policy, tmp_path / f"again{i}", builder=builder, decision="model2", pool_name="toy",
                           extra={"task": "synthetic"}) for i in range(4)]
    expected = (out / "checksums.sha256").read_text()
    assert [(a / "checksums.sha256").read_text() for a in again] == [expected] * 4


def test_safetensors_bytes_are_deterministic_and_load_back():
    from safetensors.torch import load

    from hieramas_gnn.bundle import safetensors_bytes

    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    metadata = {f"key{i}": str(i) for i in range(8)}  # the writer orders these at random
    written = {safetensors_bytes(state, metadata) for _ in range(6)}
    assert len(written) == 1
    loaded = load(written.pop())
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def test_a_plurality_policy_round_trips_with_its_vote_head(tmp_path):
    builder = toy_builder(n_roles=2, n_models=4)
    policy = toy_policy(builder, proposer_slots=4, plurality=True, decision_inputs="all").eval()
    out = export_policy(policy, tmp_path / "bundle", builder=builder, decision="model0", pool_name="toy")
    loaded, meta = load_policy(out)
    assert loaded.cfg.plurality and loaded.mixture_head.vote is not None
    batch = meta.graph_builder().batch(toy_queries(16))
    a = sample(policy, batch, decision="model0", generator=torch.Generator().manual_seed(3), temperature=2.0)
    b = sample(loaded, batch, decision="model0", generator=torch.Generator().manual_seed(3), temperature=2.0)
    assert a.designs == b.designs and torch.equal(a.log_prob, b.log_prob)
    assert any(mx is not None and mx.plurality for d in a.designs for mx in d.mixtures)


def test_a_version_5_bundle_still_loads(bundle):
    """Version 6 only added fields (a user's task rows and roles, the split): a version-5 bundle is
    read as one without them."""
    _, _, out = bundle
    meta = json.loads((out / "policy.json").read_text())
    meta["version"] = 5
    for key in ("task_questions", "role_prompts"):
        meta.pop(key, None)
    (out / "policy.json").write_text(json.dumps(meta))
    rewrite_checksums(out)
    loaded = read_meta(out)
    assert loaded.version == 5 and loaded.task_questions == [] and loaded.role_prompts == []
