"""Stage 2 on the real GNN policy: its graph-score head learns a planted topology rule."""

from __future__ import annotations

import torch

from hieramas_gnn.policy.features import FeatureBuilder, HashingEmbedder
from hieramas_gnn.policy.gnn import HieraPolicy, ArchConfig
from hieramas_gnn.policy.graph import GraphBuilder
from hieramas_gnn.train import topology_classifier
from experiments import edgewise
from hieramas_gnn.train.topology_classifier import ClassifierTraining
from test_topology_classifier import ROLES, PlantedRunner, questions, reward, select

MODELS = [("a", "a small model", (1e-7, 2e-7)), ("b", "a big model", (1e-6, 4e-6))]


def make_policy(seed: int = 0):
    torch.manual_seed(seed)
    builder = GraphBuilder(FeatureBuilder(HashingEmbedder(dim=32)), list(ROLES), MODELS)
    return HieraPolicy(ArchConfig(hidden=32, layers=1), builder.dims), builder


def test_graph_score_head_learns_planted_edge_rule():
    cfg = ClassifierTraining(n_candidates=6, epochs=25, lr=0.01, patience=25, seed=1, batch_size=32)
    policy, builder = make_policy()
    # 24 queries (6 for validation): with 16, one validation query moves the AUC by ~0.05
    data = topology_classifier.generate_data(questions(24), select(), topology_classifier.random_proposer(len(ROLES), cfg),
                                PlantedRunner(), reward, cfg)
    train, val = topology_classifier.split_queries(data, cfg)
    result = topology_classifier.train_classifier(topology_classifier.PolicyGraphScorer(policy, builder), train, val, cfg)
    assert result.best_val_auc > 0.9


def test_stage2_training_leaves_the_selector_frozen():
    cfg = ClassifierTraining(n_candidates=4, epochs=2, seed=6)
    policy, builder = make_policy()
    before = {k: v.clone() for k, v in policy.state_dict().items() if not k.startswith("score_head")}
    data = topology_classifier.generate_data(questions(8), select(), topology_classifier.random_proposer(len(ROLES), cfg),
                                PlantedRunner(), reward, cfg)
    topology_classifier.train_classifier(topology_classifier.PolicyGraphScorer(policy, builder), *topology_classifier.split_queries(data, cfg), cfg)
    after = policy.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_policy_edge_fn_gives_square_logits_with_gradient():
    policy, builder = make_policy()
    logits = edgewise.policy_edge_fn(policy, builder)(questions(1)[0])
    assert logits.shape == (len(ROLES), len(ROLES))
    logits.sum().backward()
    assert any(p.grad is not None for p in policy.edge_head.parameters())


def test_policy_selector_keeps_each_given_dag():
    policy, builder = make_policy()
    dags = [((0, 1),), ((1, 2), (0, 3))]
    designs = topology_classifier.policy_selector(policy, builder, decision="a")(questions(2), dags)
    assert [set(d.edges) for d in designs] == [set(e) for e in dags]
    assert all(d.roles == ROLES for d in designs)


def test_edge_head_proposer_gives_distinct_acyclic_dags():
    import networkx as nx

    policy, builder = make_policy()
    propose = topology_classifier.make_proposer(ClassifierTraining(n_candidates=5, proposal="edge_head"), len(ROLES), policy,
                                   builder, decision="a")
    dags = propose(questions(1)[0])
    assert 1 <= len(dags) <= 5 and len(set(dags)) == len(dags)
    assert all(nx.is_directed_acyclic_graph(nx.DiGraph(list(d))) for d in dags)


def test_cached_scorer_matches_policy_graph_logits():
    policy, builder = make_policy()
    policy.eval()
    qs = questions(3)
    designs = select()(qs, [((0, 1), (1, 2)), (), ((3, 0), (0, 2), (1, 2))])
    scorer = topology_classifier.PolicyGraphScorer(policy, builder)
    cached = scorer.score_logits(qs, designs)
    direct = policy.graph_logits(builder.batch(qs, [d.edges for d in designs]))
    assert torch.allclose(cached, direct, atol=1e-5)
    assert torch.allclose(scorer.score_logits(qs, designs), direct, atol=1e-5)  # from the cache
