"""Stage 2: candidate DAGs, labels, and a graph classifier that learns a planted topology rule."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from hieramas_gnn.mas.design import Mixture
from hieramas_gnn.tasks.base import Question
from hieramas_gnn.train import stage2
from hieramas_gnn.train.stage2 import Stage2Config
from helpers import planted
from helpers.planted import PLANTED, FakeTrace, PlantedRunner

ROLES = ("analyst", "solver", "inspector", "critic")

class AdjacencyScorer(nn.Module):
    """A tiny stand-in classifier: linear in the flattened adjacency matrix."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.lin = nn.Linear(n * n, 1)

    def score_logits(self, questions, designs):
        adj = torch.zeros(len(designs), self.n, self.n)  # [G, R, R]
        for g, d in enumerate(designs):
            for i, j in d.edges:
                adj[g, i, j] = 1.0
        return self.lin(adj.flatten(1)).squeeze(-1)  # [G]


def questions(n: int) -> list[Question]:
    return planted.questions(n, id_prefix="synthetic/arith/0/")


def select():
    return stage2.fixed_mixtures(ROLES, Mixture(("a", "b"), "a"), decision="a")


def reward(trace) -> float:
    return float(trace.correct) - 10.0 * trace.cost_usd


def test_random_dag_is_acyclic_and_connected():
    rng = np.random.default_rng(0)
    for density in (0.0, 0.3, 1.0):
        for _ in range(20):
            g = nx.DiGraph(list(stage2.random_dag(5, rng, density)))
            g.add_nodes_from(range(5))
            assert nx.is_directed_acyclic_graph(g)
            assert nx.is_weakly_connected(g)


def test_random_dag_density_sets_edge_count():
    rng = np.random.default_rng(1)
    assert len(stage2.random_dag(5, rng, 0.0)) == 4  # spanning tree only
    assert len(stage2.random_dag(5, rng, 1.0)) == 10  # every forward pair


def test_candidate_dags_are_distinct():
    cands = stage2.candidate_dags(4, 8, np.random.default_rng(2), Stage2Config())
    assert len(cands) == 8 and len(set(cands)) == 8


def test_median_label_marks_above_median_rewards_good():
    assert stage2.label_rollouts([0.1, 0.5, 0.9, 0.2], [True] * 4, [0.0] * 4, "median") == [0, 1, 1, 0]


def test_correct_cheap_label_needs_correct_and_cheap():
    labels = stage2.label_rollouts([0, 0, 0, 0], [True, True, False, True], [1.0, 3.0, 1.0, 2.0], "correct_cheap")
    assert labels == [1, 0, 0, 1]


def test_generate_data_runs_k_candidates_per_query():
    cfg = Stage2Config(n_candidates=6, seed=0)
    runner = PlantedRunner()
    data = stage2.generate_data(questions(5), select(), stage2.random_proposer(len(ROLES), cfg), runner, reward, cfg)
    assert runner.rollouts == 30
    assert all(len(qr.designs) == 6 and len(qr.labels) == 6 for qr in data)


def test_generate_data_drops_failed_rollouts():
    class Failing(PlantedRunner):
        def run(self, jobs):
            out = super().run(jobs)
            out[0].failed = True
            return out

    cfg = Stage2Config(n_candidates=4)
    data = stage2.generate_data(questions(2), select(), stage2.random_proposer(len(ROLES), cfg), Failing(), reward, cfg)
    assert len(data[0].designs) == 3 and len(data[1].designs) == 4


def test_classifier_learns_planted_edge_rule():
    cfg = Stage2Config(n_candidates=8, epochs=80, lr=0.05, patience=20, seed=3)
    torch.manual_seed(0)
    data = stage2.generate_data(questions(24), select(), stage2.random_proposer(len(ROLES), cfg),
                                PlantedRunner(), reward, cfg)
    train, val = stage2.split_queries(data, cfg)
    scorer = AdjacencyScorer(len(ROLES))
    result = stage2.train_classifier(scorer, train, val, cfg)
    assert result.best_val_auc > 0.9


def test_chosen_design_beats_random_candidate_on_held_out_queries():
    cfg = Stage2Config(n_candidates=8, epochs=80, lr=0.05, patience=20, seed=4)
    torch.manual_seed(0)
    propose = stage2.random_proposer(len(ROLES), cfg)
    data = stage2.generate_data(questions(24), select(), propose, PlantedRunner(), reward, cfg)
    scorer = AdjacencyScorer(len(ROLES))
    stage2.train_classifier(scorer, *stage2.split_queries(data, cfg), cfg)
    held_out = questions(40)[24:]
    chosen = stage2.choose_designs(scorer, held_out, select(), propose)
    acc_chosen = np.mean([PLANTED in d.edges for d in chosen])
    rng = np.random.default_rng(9)
    acc_random = np.mean([PLANTED in stage2.random_dag(len(ROLES), rng, rng.uniform()) for _ in held_out])
    assert acc_chosen > acc_random + 0.2


def test_train_classifier_rejects_uninformative_data():
    with pytest.raises(ValueError, match="informative"):
        stage2.train_classifier(AdjacencyScorer(3), [], [], Stage2Config())


def test_config_rejects_bad_label_rule():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="label_rule"):
        Stage2Config(label_rule="mean")


def test_fit_stage2_without_informative_queries_trains_nothing():
    class Tied(PlantedRunner):
        def run(self, jobs):
            self.rollouts += len(jobs)
            return [FakeTrace(correct=True, cost_usd=0.0) for _ in jobs]

    cfg = Stage2Config(n_candidates=3)
    result, spent = stage2.fit_stage2(AdjacencyScorer(len(ROLES)), select(), questions(3), questions(5)[3:],
                                      Tied(), reward, len(ROLES), cfg)
    assert spent == 15 and result.n_train_rollouts == 0 and result.history == []


def test_queries_with_negligible_reward_spread_are_dropped():
    class CostOnly(PlantedRunner):
        def run(self, jobs):
            self.rollouts += len(jobs)
            return [FakeTrace(correct=True, cost_usd=1e-6 * len(d.edges)) for d, _ in jobs]

    cfg = Stage2Config(n_candidates=4, min_spread=0.05)
    data = stage2.generate_data(questions(3), select(), stage2.random_proposer(len(ROLES), cfg), CostOnly(), reward, cfg)
    assert not any(qr.informative for qr in data)


def test_median_label_marks_the_shared_best_reward_good():
    assert stage2.label_rollouts([1.0, 1.0, 1.0, 0.0], [True] * 4, [0.0] * 4, "median") == [1, 1, 1, 0]
