"""Graph classification vs per-edge comparators: equal rollout budgets, every method evaluated."""

from __future__ import annotations

from hieramas_gnn.train import topology_classifier
from experiments import edgewise
from experiments.edgewise import EdgewiseConfig
from hieramas_gnn.train.topology_classifier import ClassifierTraining
from test_topology_classifier import PlantedRunner, questions, reward
from test_topology_classifier_policy import make_policy


def test_comparators_get_the_same_budget_as_stage2():
    policy, builder = make_policy()
    select = topology_classifier.policy_selector(policy, builder, decision="a")
    qs = questions(14)
    runner = PlantedRunner()
    rows, info = edgewise.compare_topologies(policy, builder, select, qs[:6], qs[6:8], qs[8:], runner, reward,
                                             ClassifierTraining(n_candidates=3, epochs=2, seed=0),
                                             EdgewiseConfig(batch_size=8), decision="a")
    assert info["budget_rollouts"] == 8 * 3
    by = {r["method"]: r for r in rows}
    assert set(by) == {"stage2-graph-classifier", "random-dag-same-pool", "gptswarm", "agentprune", "gdesigner"}
    assert all(by[m]["rollouts"] == 24 for m in ("stage2-graph-classifier", "gptswarm", "agentprune", "gdesigner"))
    assert all(r["n"] == 6 for r in rows)


def test_gdesigner_leaves_the_exported_policy_edge_head_alone():
    policy, builder = make_policy()
    before = [p.clone() for p in policy.edge_head.parameters()]
    select = topology_classifier.policy_selector(policy, builder, decision="a")
    qs = questions(10)
    edgewise.compare_topologies(policy, builder, select, qs[:4], qs[4:6], qs[6:], PlantedRunner(), reward,
                                ClassifierTraining(n_candidates=3, epochs=1), EdgewiseConfig(batch_size=6), decision="a")
    assert all((a == b).all() for a, b in zip(before, policy.edge_head.parameters()))
