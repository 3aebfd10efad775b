"""HieraPolicy and its input graph: shapes, invariants, gradients, batching equivalence."""

from __future__ import annotations

import pytest
import torch

from hieramas_gnn.policy.gnn import HieraPolicy
from hieramas_gnn.policy.settings import CONVS, ArchConfig
from hieramas_gnn.policy.graph import candidate_pairs, dag_edge_index
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries


@pytest.fixture
def builder():
    return toy_builder(n_roles=3, n_models=4)


def test_graph_has_all_node_and_edge_types(builder):
    data = builder.graph(toy_queries(1)[0], dag_edges=[(0, 2)])
    assert data["role"].x.shape == (3, builder.dims.role)
    assert data["llm"].x.shape == (4, builder.dims.llm)
    assert data["query"].x.shape == (1, builder.dims.query)
    assert data["role", "to", "llm"].edge_index.shape == (2, 12)
    assert data["query", "to", "llm"].edge_index.shape == (2, 4)
    assert data["role", "cand", "role"].edge_index.shape == (2, 6)
    assert data["role", "dag", "role"].edge_index.tolist() == [[0], [2]]


def test_candidate_pairs_are_all_ordered_pairs_without_self_loops():
    pairs = candidate_pairs(4)
    assert pairs.shape == (2, 12) and not bool((pairs[0] == pairs[1]).any())
    assert len({tuple(p) for p in pairs.t().tolist()}) == 12


def test_invalid_dag_edges_are_rejected(builder):
    with pytest.raises(ValueError, match="not valid pairs"):
        builder.graph("q", dag_edges=[(0, 3)])


def test_dag_edge_index_offsets_by_graph(builder):
    batch = builder.batch(toy_queries(2))
    assert dag_edge_index(batch, [[(0, 1)], [(1, 2)]]).tolist() == [[0, 4], [1, 5]]


@pytest.mark.parametrize("conv", CONVS)
def test_every_head_has_the_documented_shape(builder, conv):
    policy = toy_policy(builder, conv=conv)
    out = policy(builder.batch(toy_queries(2), dags=[[(0, 1)], []]))
    assert out.proposer.shape == out.synthesizer.shape == (6, 4)
    assert out.skip.shape == out.order.shape == (6,)
    assert out.edge.shape == (12,) and out.graph.shape == (2,)


def test_head_probabilities_are_in_unit_interval(builder):
    out = toy_policy(builder)(builder.batch(toy_queries(3)))
    for probs in (torch.softmax(out.proposer, -1), torch.softmax(out.synthesizer, -1),
                  torch.sigmoid(out.skip), torch.sigmoid(out.edge), torch.sigmoid(out.graph)):
        assert bool(((probs >= 0) & (probs <= 1)).all())
    assert torch.allclose(torch.softmax(out.proposer, -1).sum(-1), torch.ones(9))


@pytest.mark.parametrize("conv", CONVS)
def test_every_parameter_gets_a_gradient_from_all_heads(builder, conv):
    policy = toy_policy(builder, conv=conv, dropout=0.1)
    batch = builder.batch(toy_queries(2), dags=[[(0, 1), (1, 2)], [(0, 2)]])
    out = policy(batch)
    loss = sum((t ** 2).mean() for t in (out.proposer, out.synthesizer, out.skip, out.order, out.edge, out.graph))
    loss.backward()
    missing = [n for n, p in policy.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert missing == []


def test_mixture_reinforce_gradient_reaches_the_encoder(builder):
    policy = toy_policy(builder)
    batch = builder.batch(toy_queries(2))
    out = sample(policy, batch, decision="model0", mode="mixture", dags=[[(0, 1)], [(1, 2)]],
                 generator=torch.Generator().manual_seed(0))
    reward = torch.tensor([[1.0, -1.0, 0.5], [0.2, 0.3, -0.7]])
    (-(reward * out.role_log_prob).sum()).backward()
    for name, p in policy.named_parameters():
        if name.startswith(("encoder.", "proj.", "mixture_head.")):
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_batched_graph_equals_per_query_graphs(builder):
    policy = toy_policy(builder).eval()
    queries, dags = toy_queries(3), [[(0, 1)], [], [(2, 0), (2, 1)]]
    batched = policy(builder.batch(queries, dags))
    singles = [policy(builder.batch([q], [d])) for q, d in zip(queries, dags)]
    for field in ("proposer", "synthesizer", "skip", "order", "edge", "graph"):
        joined = torch.cat([getattr(s, field) for s in singles])
        assert torch.allclose(getattr(batched, field), joined, atol=1e-5), field


def test_graph_score_depends_on_the_dag(builder):
    policy = toy_policy(builder).eval()
    q = toy_queries(1)
    a = policy.graph_logits(builder.batch(q, [[(0, 1), (1, 2)]]))
    b = policy.graph_logits(builder.batch(q, [[]]))
    assert not torch.allclose(a, b)


def test_empty_role_set_gives_empty_heads():
    builder = toy_builder(n_roles=0, n_models=3)
    out = toy_policy(builder)(builder.batch(toy_queries(2)))
    assert out.proposer.shape == (0, 3) and out.edge.shape == (0,) and out.graph.shape == (2,)


def test_reset_parameters_reinitializes_every_head(builder):
    policy = toy_policy(builder)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    policy.reset_parameters()
    changed = {k for k, v in policy.state_dict().items() if not torch.equal(v, before[k])}
    for prefix in ("proj.", "encoder.", "mixture_head.", "edge_head.", "score_head."):
        assert any(k.startswith(prefix) for k in changed), prefix


def test_mixed_pools_in_one_batch_are_rejected(builder):
    from torch_geometric.data import Batch
    other = toy_builder(n_roles=3, n_models=5)
    batch = Batch.from_data_list([builder.graph("a"), other.graph("b")])
    with pytest.raises(ValueError, match="same pool"):
        toy_policy(builder).encode(batch)


@pytest.mark.parametrize("bad", [{"conv": "sage"}, {"hidden": 30, "heads": 4}, {"k_proposers": 0},
                                 {"dropout": 1.0}])
def test_invalid_policy_config_names_the_field(bad):
    with pytest.raises(ValueError, match="ArchConfig"):
        ArchConfig(**bad).validate()


def test_policy_rejects_invalid_config_at_construction(builder):
    with pytest.raises(ValueError, match="conv"):
        HieraPolicy(ArchConfig(conv="sage"), builder.dims)


def test_node_type_embedding_does_not_swamp_role_features():
    torch.manual_seed(0)
    builder = toy_builder(n_roles=4, n_models=3)
    policy = toy_policy(builder)
    with torch.no_grad():
        h = torch.nn.functional.normalize(policy.encode(builder.batch(toy_queries(1))).h_role, dim=-1)  # [4, H]
    off_diagonal = (h @ h.t())[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.max() < 0.9  # with an N(0, 1) type embedding: > 0.99
