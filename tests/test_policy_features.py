"""Features: embedders, the embedding cache, and the feature matrices the policy reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hieramas_gnn.policy.features import (
    CachedEmbedder, FeatureBuilder, HashingEmbedder, LLMNode, MiniLMEmbedder, as_llm_nodes, grouped_tokens,
    position_encoding, price_features, text_key,
)


class CountingEmbedder:
    """Hashing embedder that counts the texts it was asked to embed."""

    def __init__(self, dim: int = 8) -> None:
        self.inner = HashingEmbedder(dim)
        self.name, self.calls = self.inner.name, []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts):
        self.calls.extend(texts)
        return self.inner.embed(texts)


def test_hashing_embedder_is_deterministic_and_unit_norm():
    e = HashingEmbedder(16)
    a, b = e.embed(["hello world", "other"]), HashingEmbedder(16).embed(["hello world", "other"])
    assert a.shape == (2, 16)
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2))


def test_hashing_embedder_separates_different_texts():
    a, b = HashingEmbedder(64).embed(["solve the algebra problem", "write python code"])
    assert float(a @ b) < 0.9


def test_cached_embedder_embeds_each_text_once_in_memory():
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner)
    first = cached.embed(["a b", "c d", "a b"])
    second = cached.embed(["c d"])
    assert sorted(inner.calls) == ["a b", "c d"]
    assert torch.equal(first[1], second[0]) and torch.equal(first[0], first[2])


def test_cached_embedder_reuses_disk_cache_across_instances(tmp_path):
    CachedEmbedder(CountingEmbedder(), tmp_path).embed(["role description"])
    inner = CountingEmbedder()
    out = CachedEmbedder(inner, tmp_path).embed(["role description"])
    assert inner.calls == []
    key = text_key(inner.name, "role description")
    with np.load(tmp_path / key[:2] / f"{key}.npz") as stored:
        assert np.allclose(stored["embedding"], out[0].numpy())


def test_cache_key_depends_on_embedder_name():
    assert text_key("hashing-8", "x") != text_key("hashing-16", "x")


def test_feature_dims_match_matrices():
    fb = FeatureBuilder(HashingEmbedder(12), domain_vocab=["math", "code"], pos_dim=6, hint_dim=2)
    models = [LLMNode("a", "small", 1e-7, 2e-7, (0.5, 0.1)), LLMNode("b", "big", 1e-5, 3e-5, (0.9, 0.8))]
    assert fb.role_features(["x", "y", "z"]).shape == (3, fb.dims.role) == (3, 12 + 6)
    assert fb.llm_features(models).shape == (2, fb.dims.llm) == (2, 12 + 4 + 2 + 8)  # + identity
    assert fb.query_features("q", {"domain": "code"}).shape == (1, fb.dims.query) == (1, 12 + 3)


def test_domain_one_hot_uses_other_slot_for_unknown_domains():
    fb = FeatureBuilder(HashingEmbedder(4), domain_vocab=["math", "code"])
    q = fb.queries_features(["a", "b", "c"], [{"domain": "code"}, {"domain": "law"}, {}])
    assert q[:, 4:].tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1]]


def test_no_domain_vocab_means_query_is_just_the_embedding():
    fb = FeatureBuilder(HashingEmbedder(4))
    assert fb.dims.query == 4 and fb.query_features("a", {"domain": "x"}).shape == (1, 4)


def test_price_features_rank_cheap_below_expensive():
    feats = price_features(as_llm_nodes([("cheap", "", (1e-7, 1e-7)), ("dear", "", (1e-5, 2e-5))]))
    assert feats[0, 3] == 0.0 and feats[1, 3] == 1.0
    assert feats[0, 2] < feats[1, 2] and feats[0, 0] < feats[1, 0]


def test_ability_hints_of_wrong_width_are_rejected():
    fb = FeatureBuilder(HashingEmbedder(4), hint_dim=2)
    with pytest.raises(ValueError, match="ability hints"):
        fb.llm_features([LLMNode("a", "p", 0.0, 0.0, (1.0,))])


def test_duplicate_model_names_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        as_llm_nodes([("a", "p", (0, 0)), ("a", "q", (0, 0))])


def test_position_encoding_distinguishes_positions():
    pe = position_encoding(5, 8)
    assert pe.shape == (5, 8) and len({tuple(r.tolist()) for r in pe}) == 5


def test_minilm_width_is_known_without_loading_and_matches_the_encoder():
    emb = MiniLMEmbedder()
    assert emb.dim == 384 and emb._model is None  # the width loads nothing
    out = emb.embed(["The solver writes the final answer.", "A cheap model good at arithmetic."])
    assert out.shape == (2, 384) and emb._model is not None
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-4)
    # many texts in one call (texts of one token count encoded together, unpadded; short ones
    # alone): the same bits as each text alone, whichever texts come with it, at 1 and 2 threads
    # (padding would change the last bits, and so would grouping the short texts)
    texts = [f"Let x = {a}. Find the remainder when x^{b} + 7 is divided by {a + b}." for a, b in
             ((3, 5), (12, 7), (4051, 2), (9, 9), (77, 31), (5, 123))] + ["What is 2 + 2?", "Name a prime.",
                                                                     "A much longer question " * 12,
                                                                     "cat", "dog", "two", "sum"]
    emb.batch_size = 2
    counts = emb.token_counts(texts)
    assert counts.count(3) == 4 and max(counts.count(c) for c in counts if c >= grouped_tokens(2)) >= 3
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            alone = torch.cat([emb.embed([t]) for t in texts])
            assert torch.equal(emb.embed(texts), alone)
            assert torch.equal(emb.embed(texts[::-1]), alone.flip(0))
    finally:
        torch.set_num_threads(threads)


def test_an_encoder_of_another_width_is_refused_when_it_loads(monkeypatch):
    import sentence_transformers

    class Narrow:
        def __init__(self, *args, **kwargs):
            pass

        def get_embedding_dimension(self):
            return 128

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Narrow)
    with pytest.raises(RuntimeError, match="128-d vectors, not the 384"):
        MiniLMEmbedder().embed(["a question"])


def test_model_spec_like_objects_give_prices_and_hints():
    from types import SimpleNamespace

    spec = SimpleNamespace(name="m", profile="a model", input_cost_per_token=1e-6, output_cost_per_token=2e-6,
                           extra={"policy_hints": [0.5, 0.25]})
    (node,) = as_llm_nodes([spec])
    assert node == LLMNode("m", "a model", 1e-6, 2e-6, (0.5, 0.25))


TWINS = [("a", "Small cheap model.", (1e-7, 2e-7)), ("b", "Small cheap model.", (1e-7, 2e-7)),
         ("dear", "Large model.", (1e-5, 2e-5))]


def test_tied_prices_share_one_rank():
    rank = price_features(as_llm_nodes(TWINS))[:, 3]
    assert rank[0] == rank[1] == 0.25 and rank[2] == 1.0


def test_permuting_the_pool_permutes_the_llm_features():
    fb = FeatureBuilder(HashingEmbedder(8))
    order = [2, 0, 1]
    feats = fb.llm_features(TWINS)
    assert torch.allclose(fb.llm_features([TWINS[i] for i in order]), feats[order], atol=1e-6)


def test_same_profile_and_price_still_give_distinct_llm_features():
    feats = FeatureBuilder(HashingEmbedder(8)).llm_features(TWINS)
    assert not torch.equal(feats[0], feats[1])


def test_without_model_identity_twins_look_alike_and_a_run_config_turns_it_off(tmp_path):
    feats = FeatureBuilder(HashingEmbedder(8), id_dim=0).llm_features(TWINS)
    assert torch.equal(feats[0], feats[1])  # same profile and price: nothing tells them apart
    from hieramas_gnn.build import build_training
    from hieramas_gnn.config import load_config

    def builder(*extra):
        return build_training(load_config(None, [
            "task.name=synthetic", "task.train_size=4", "task.val_size=2", "task.test_size=2", "pool.name=sim",
            "policy.embedder=hashing", "policy.hashing_dim=16", "tracking.wandb=disabled",
            f"run.out_dir={tmp_path}/run", f"cache.path={tmp_path}/c.sqlite", f"policy.embed_cache={tmp_path}/emb",
            *extra])).builder

    blind, named = builder("policy.model_identity=false"), builder()
    assert blind.features.id_dim == 0 and named.features.id_dim == 8
    assert blind.dims.llm + 8 == named.dims.llm


def test_identity_features_depend_on_the_name_only():
    from hieramas_gnn.policy.features import identity_features

    ids = identity_features(["a", "b", "a"], 8)
    assert ids.shape == (3, 8) and torch.equal(ids[0], ids[2]) and not torch.equal(ids[0], ids[1])
    assert float(ids.abs().max()) <= 1.0


def test_accuracy_hints_are_overall_then_shrunk_per_domain_accuracy():
    import numpy as np

    from hieramas_gnn.policy.features import accuracy_hints

    correct = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    hints = accuracy_hints(correct, ["alg", "alg", "geo", "geo"], ["alg", "geo", "bio"], prior=2.0)
    assert hints[0] == pytest.approx((0.5, (2 + 1.0) / 4, (0 + 1.0) / 4, 0.5))
    assert hints[1] == pytest.approx((0.5, (0 + 1.0) / 4, (2 + 1.0) / 4, 0.5))


def test_attached_hints_become_llm_features():
    from hieramas_gnn.policy.features import attach_hints

    builder = FeatureBuilder(CachedEmbedder(HashingEmbedder(8)), hint_dim=2, pos_dim=2)
    nodes = attach_hints([("a", "model a", (1e-6, 1e-6)), ("b", "model b", (1e-6, 1e-6))], [(0.9, 0.1), (0.2, 0.8)])
    x = builder.llm_features(nodes)
    assert torch.allclose(x[:, 8 + 4: 8 + 4 + 2], torch.tensor([[0.9, 0.1], [0.2, 0.8]]))


def test_accuracy_hints_reject_mismatched_shapes():
    import numpy as np

    from hieramas_gnn.policy.features import accuracy_hints

    with pytest.raises(ValueError, match="accuracy_hints"):
        accuracy_hints(np.zeros((3, 2)), ["a", "b"], ["a"])
