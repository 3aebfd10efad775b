"""Graph classification vs per-edge comparators: equal rollout budgets, every method evaluated."""

from __future__ import annotations

from hieramas_gnn.train import edgewise, stage2
from hieramas_gnn.train.edgewise import EdgewiseConfig
from hieramas_gnn.train.stage2 import Stage2Config
from test_stage2 import ROLES, PlantedRunner, questions, reward
from test_stage2_policy import make_policy


def test_comparators_get_the_same_budget_as_stage2():
    policy, builder = make_policy()
    select = stage2.policy_selector(policy, builder, decision="a")
    qs = questions(22)
    runner = PlantedRunner()
    rows, info = edgewise.compare_topologies(policy, builder, select, qs[:8], qs[8:12], qs[12:], runner, reward,
                                             Stage2Config(n_candidates=4, epochs=3, seed=0),
                                             EdgewiseConfig(batch_size=8))
    assert info["budget_rollouts"] == 12 * 4
    by = {r["method"]: r for r in rows}
    assert set(by) == {"stage2-graph-classifier", "random-dag-same-pool", "gptswarm", "agentprune", "gdesigner"}
    assert all(by[m]["rollouts"] == 48 for m in ("stage2-graph-classifier", "gptswarm", "agentprune", "gdesigner"))
    assert all(r["n"] == 10 for r in rows)


def test_gdesigner_leaves_the_exported_policy_edge_head_alone():
    policy, builder = make_policy()
    before = [p.clone() for p in policy.edge_head.parameters()]
    select = stage2.policy_selector(policy, builder, decision="a")
    qs = questions(14)
    edgewise.compare_topologies(policy, builder, select, qs[:6], qs[6:10], qs[10:], PlantedRunner(), reward,
                                Stage2Config(n_candidates=3, epochs=2), EdgewiseConfig(batch_size=6))
    assert all((a == b).all() for a, b in zip(before, policy.edge_head.parameters()))
