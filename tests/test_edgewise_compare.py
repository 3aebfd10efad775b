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
    qs = questions(14)
    runner = PlantedRunner()
    rows, info = edgewise.compare_topologies(policy, builder, select, qs[:6], qs[6:8], qs[8:], runner, reward,
                                             Stage2Config(n_candidates=3, epochs=2, seed=0),
                                             EdgewiseConfig(batch_size=8), decision="a")
    assert info["budget_rollouts"] == 8 * 3
    by = {r["method"]: r for r in rows}
    assert set(by) == {"stage2-graph-classifier", "random-dag-same-pool", "gptswarm", "agentprune", "gdesigner"}
    assert all(by[m]["rollouts"] == 24 for m in ("stage2-graph-classifier", "gptswarm", "agentprune", "gdesigner"))
    assert all(r["n"] == 6 for r in rows)


def test_gdesigner_leaves_the_exported_policy_edge_head_alone():
    policy, builder = make_policy()
    before = [p.clone() for p in policy.edge_head.parameters()]
    select = stage2.policy_selector(policy, builder, decision="a")
    qs = questions(10)
    edgewise.compare_topologies(policy, builder, select, qs[:4], qs[4:6], qs[6:], PlantedRunner(), reward,
                                Stage2Config(n_candidates=3, epochs=1), EdgewiseConfig(batch_size=6), decision="a")
    assert all((a == b).all() for a, b in zip(before, policy.edge_head.parameters()))
