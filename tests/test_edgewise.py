"""Per-edge comparators: acyclic samples, the rollout budget, and learning a planted edge."""

from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from hieramas_gnn.mas.design import Mixture
from experiments import edgewise
from experiments.edgewise import EdgewiseConfig
from hieramas_gnn.train.topology_classifier import fixed_mixtures
from helpers.planted import PLANTED, PlantedRunner, questions

ROLES = ("analyst", "solver", "inspector")
COST_PER_EDGE = 0.01

SELECT = fixed_mixtures(ROLES, Mixture(("a",), "a"), decision="a")


def reward(trace) -> float:
    return float(trace.correct) - trace.cost_usd


def test_sampled_dags_are_acyclic():
    gen = torch.Generator().manual_seed(0)
    logits = torch.full((4, 4), 3.0)  # every pair wants to be an edge
    for _ in range(20):
        edges, _ = edgewise.sample_dag(logits, gen)
        g = nx.DiGraph(list(edges))
        assert nx.is_directed_acyclic_graph(g)


def test_sample_log_prob_has_gradient():
    logits = nn.Parameter(torch.zeros(3, 3))
    _, lp = edgewise.sample_dag(logits, torch.Generator().manual_seed(1))
    lp.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_decode_keeps_only_likely_pairs():
    logits = torch.full((3, 3), -1.0)
    logits[0, 2] = 2.0
    assert edgewise.decode_dag(logits) == ((0, 2),)


def test_prune_removes_lowest_pairs():
    logits = torch.arange(9.0).view(3, 3)
    mask = ~torch.eye(3, dtype=torch.bool)
    pruned = edgewise.prune(logits, mask, 0.5)
    assert int(pruned.sum()) == 3 and not pruned[0, 1] and pruned[2, 1]


def test_each_comparator_spends_exactly_its_budget():
    cfg = EdgewiseConfig(budget=50, batch_size=8)
    for method in ("gptswarm", "agentprune"):
        runner = PlantedRunner(COST_PER_EDGE)
        res = edgewise.train_free(method, len(ROLES), questions(10), SELECT, runner, reward, cfg)
        assert runner.rollouts == 50 and res.rollouts == 50


def test_gdesigner_spends_exactly_its_budget():
    head = edgewise.FreeEdgeLogits(len(ROLES))
    runner = PlantedRunner(COST_PER_EDGE)
    res = edgewise.train_gdesigner(head, list(head.parameters()), questions(5), SELECT, runner, reward,
                                   EdgewiseConfig(budget=20, batch_size=6))
    assert runner.rollouts == 20 and res.rollouts == 20


def test_gptswarm_learns_planted_edge():
    res = edgewise.train_free("gptswarm", len(ROLES), questions(10), SELECT, PlantedRunner(COST_PER_EDGE), reward,
                              EdgewiseConfig(budget=400, batch_size=16, lr=0.2))
    designs = res.choose(questions(3), SELECT)
    assert all(PLANTED in d.edges for d in designs)


def test_agentprune_keeps_planted_edge_and_prunes_others():
    res = edgewise.train_free("agentprune", len(ROLES), questions(10), SELECT, PlantedRunner(COST_PER_EDGE), reward,
                              EdgewiseConfig(budget=400, batch_size=16, lr=0.2, prune_rounds=3))
    assert bool(res.mask[PLANTED]) and int(res.mask.sum()) < 6
