"""Stage 2: candidate DAGs, labels, and a graph classifier that learns a planted topology rule."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from hieramas_gnn.mas.design import Mixture
from hieramas_gnn.tasks.base import Question
from hieramas_gnn.train import topology_classifier
from hieramas_gnn.train.topology_classifier import ClassifierTraining
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
    return topology_classifier.fixed_mixtures(ROLES, Mixture(("a", "b"), "a"), decision="a")


def reward(trace) -> float:
    return float(trace.correct) - 10.0 * trace.cost_usd


def test_random_dag_is_acyclic_and_connected():
    rng = np.random.default_rng(0)
    for density in (0.0, 0.3, 1.0):
        for _ in range(20):
            g = nx.DiGraph(list(topology_classifier.random_dag(5, rng, density)))
            g.add_nodes_from(range(5))
            assert nx.is_directed_acyclic_graph(g)
            assert nx.is_weakly_connected(g)


def test_random_dag_density_sets_edge_count():
    rng = np.random.default_rng(1)
    assert len(topology_classifier.random_dag(5, rng, 0.0)) == 4  # spanning tree only
    assert len(topology_classifier.random_dag(5, rng, 1.0)) == 10  # every forward pair


def test_candidate_dags_are_distinct():
    cands = topology_classifier.candidate_dags(4, 8, np.random.default_rng(2), ClassifierTraining())
    assert len(cands) == 8 and len(set(cands)) == 8


def test_median_label_marks_above_median_rewards_good():
    assert topology_classifier.label_rollouts([0.1, 0.5, 0.9, 0.2], [True] * 4, [0.0] * 4, "median") == [0, 1, 1, 0]


def test_correct_cheap_label_needs_correct_and_cheap():
    labels = topology_classifier.label_rollouts([0, 0, 0, 0], [True, True, False, True], [1.0, 3.0, 1.0, 2.0], "correct_cheap")
    assert labels == [1, 0, 0, 1]


def test_generate_data_runs_k_candidates_per_query():
    cfg = ClassifierTraining(n_candidates=6, seed=0)
    runner = PlantedRunner()
    data = topology_classifier.generate_data(questions(5), select(), topology_classifier.random_proposer(len(ROLES), cfg), runner, reward, cfg)
    assert runner.rollouts == 30
    assert all(len(qr.designs) == 6 and len(qr.labels) == 6 for qr in data)


def test_generate_data_drops_failed_rollouts():
    class Failing(PlantedRunner):
        def run(self, jobs):
            out = super().run(jobs)
            out[0].failed = True
            return out

    cfg = ClassifierTraining(n_candidates=4)
    data = topology_classifier.generate_data(questions(2), select(), topology_classifier.random_proposer(len(ROLES), cfg), Failing(), reward, cfg)
    assert len(data[0].designs) == 3 and len(data[1].designs) == 4


def test_classifier_learns_planted_edge_rule():
    cfg = ClassifierTraining(n_candidates=8, epochs=80, lr=0.05, patience=20, seed=3)
    torch.manual_seed(0)
    data = topology_classifier.generate_data(questions(24), select(), topology_classifier.random_proposer(len(ROLES), cfg),
                                PlantedRunner(), reward, cfg)
    train, val = topology_classifier.split_queries(data, cfg)
    scorer = AdjacencyScorer(len(ROLES))
    result = topology_classifier.train_classifier(scorer, train, val, cfg)
    assert result.best_val_auc > 0.9


def test_chosen_design_beats_random_candidate_on_held_out_queries():
    cfg = ClassifierTraining(n_candidates=8, epochs=80, lr=0.05, patience=20, seed=4)
    torch.manual_seed(0)
    propose = topology_classifier.random_proposer(len(ROLES), cfg)
    data = topology_classifier.generate_data(questions(24), select(), propose, PlantedRunner(), reward, cfg)
    scorer = AdjacencyScorer(len(ROLES))
    topology_classifier.train_classifier(scorer, *topology_classifier.split_queries(data, cfg), cfg)
    held_out = questions(40)[24:]
    chosen = topology_classifier.choose_designs(scorer, held_out, select(), propose)
    acc_chosen = np.mean([PLANTED in d.edges for d in chosen])
    rng = np.random.default_rng(9)
    acc_random = np.mean([PLANTED in topology_classifier.random_dag(len(ROLES), rng, rng.uniform()) for _ in held_out])
    assert acc_chosen > acc_random + 0.2


def test_train_classifier_rejects_uninformative_data():
    with pytest.raises(ValueError, match="informative"):
        topology_classifier.train_classifier(AdjacencyScorer(3), [], [], ClassifierTraining())


def test_config_rejects_bad_label_rule():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="label_rule"):
        ClassifierTraining(label_rule="mean")


def test_fit_stage2_without_informative_queries_trains_nothing():
    class Tied(PlantedRunner):
        def run(self, jobs):
            self.rollouts += len(jobs)
            return [FakeTrace(correct=True, cost_usd=0.0) for _ in jobs]

    cfg = ClassifierTraining(n_candidates=3)
    result, spent = topology_classifier.fit_classifier(AdjacencyScorer(len(ROLES)), select(), questions(3), questions(5)[3:],
                                      Tied(), reward, len(ROLES), cfg)
    assert spent == 15 and result.n_train_rollouts == 0 and result.history == []


def test_queries_with_negligible_reward_spread_are_dropped():
    class CostOnly(PlantedRunner):
        def run(self, jobs):
            self.rollouts += len(jobs)
            return [FakeTrace(correct=True, cost_usd=1e-6 * len(d.edges)) for d, _ in jobs]

    cfg = ClassifierTraining(n_candidates=4, min_spread=0.05)
    data = topology_classifier.generate_data(questions(3), select(), topology_classifier.random_proposer(len(ROLES), cfg), CostOnly(), reward, cfg)
    assert not any(qr.informative for qr in data)


def test_median_label_marks_the_shared_best_reward_good():
    assert topology_classifier.label_rollouts([1.0, 1.0, 1.0, 0.0], [True] * 4, [0.0] * 4, "median") == [1, 1, 1, 0]


# ---------------------------------------------------------------- several runs per candidate

A, B, C, D, E = ((0, 1),), ((0, 2),), ((1, 2),), ((0, 3),), ((1, 3),)
OUTCOMES = {  # per candidate, per sample index (mod 3): correct, or None = the run failed
    A: [True, True, False],
    B: [False, False, True],
    C: [True, True, True],
    D: [None, None, None],
    E: [True, None, False],
}


class SampledRunner(PlantedRunner):
    """Correctness per (candidate, sample_index); run s costs 0.001·(s+1). A failed run claims
    correct and a large cost, so counting it would move every mean."""

    def __init__(self, start: int = 0, raise_on_call: int | None = None):
        super().__init__()
        self.sample_index = start
        self.seen: list[int] = []
        self.raise_on_call = raise_on_call

    def run(self, jobs):
        if self.raise_on_call is not None and len(self.seen) == self.raise_on_call:
            raise RuntimeError("provider down")
        self.seen.append(self.sample_index)
        self.rollouts += len(jobs)
        s = self.sample_index % 3
        out = []
        for d, _ in jobs:
            ok = OUTCOMES[d.edges][s]
            out.append(FakeTrace(correct=True, cost_usd=1.0, failed=True) if ok is None
                       else FakeTrace(correct=ok, cost_usd=0.001 * (s + 1)))
        return out


def fixed_proposer(q):
    return [A, B, C, D, E]


def sampled_data(runner, **cfg):
    config = ClassifierTraining(n_candidates=5, samples=3, **cfg)
    return topology_classifier.generate_data(questions(2), select(), fixed_proposer, runner, reward, config)


def test_samples_average_reward_correctness_and_cost_over_runs():
    data = sampled_data(SampledRunner())
    for qr in data:
        assert [d.edges for d in qr.designs] == [A, B, C, E]
        assert qr.accuracy == pytest.approx([2 / 3, 1 / 3, 1.0, 0.5])
        assert qr.correct == [True, False, True, True]  # majority (>= half) of the runs
        assert qr.costs == pytest.approx([0.002, 0.002, 0.002, 0.002])
        # reward of a run: correct - 10·cost = correct - 0.01·(s+1)
        assert qr.rewards == pytest.approx([2 / 3 - 0.02, 1 / 3 - 0.02, 1.0 - 0.02, (0.99 - 0.03) / 2])


def test_failed_runs_are_left_out_of_the_means():
    qr = sampled_data(SampledRunner())[0]
    e = [d.edges for d in qr.designs].index(E)
    assert qr.accuracy[e] == pytest.approx(0.5)  # runs 0 and 2 only, not the failed "correct" run 1
    assert qr.costs[e] == pytest.approx((0.001 + 0.003) / 2)


def test_candidate_whose_every_run_failed_is_dropped():
    data = sampled_data(SampledRunner())
    assert all(D not in [d.edges for d in qr.designs] for qr in data)
    assert all(len(qr.labels) == len(qr.rewards) == len(qr.accuracy) == 4 for qr in data)


def test_samples_run_every_job_once_per_sample_index():
    runner = SampledRunner()
    sampled_data(runner)
    assert runner.seen == [0, 1, 2]
    assert runner.rollouts == 3 * 2 * 5  # samples × (queries × candidates)


def test_sample_index_counts_from_the_runners_own_and_is_restored():
    runner = SampledRunner(start=6)
    data = sampled_data(runner)
    assert runner.seen == [6, 7, 8] and runner.sample_index == 6
    assert data[0].accuracy == pytest.approx([2 / 3, 1 / 3, 1.0, 0.5])  # 6, 7, 8 ≡ 0, 1, 2 (mod 3)


def test_sample_index_is_restored_when_the_runner_raises():
    runner = SampledRunner(start=4, raise_on_call=1)
    with pytest.raises(RuntimeError, match="provider down"):
        sampled_data(runner)
    assert runner.seen == [4] and runner.sample_index == 4


def test_several_samples_need_a_runner_with_sample_index():
    runner = PlantedRunner()
    cfg = ClassifierTraining(n_candidates=4, samples=2)
    with pytest.raises(ValueError, match="sample_index"):
        topology_classifier.generate_data(questions(2), select(), topology_classifier.random_proposer(len(ROLES), cfg), runner, reward, cfg)
    assert runner.rollouts == 0


def test_one_sample_leaves_sample_index_alone_and_accuracy_is_0_or_1():
    runner = SampledRunner(start=1)
    cfg = ClassifierTraining(n_candidates=5)
    qr = topology_classifier.generate_data(questions(1), select(), fixed_proposer, runner, reward, cfg)[0]
    assert runner.seen == [1] and runner.sample_index == 1 and runner.rollouts == 5
    assert [d.edges for d in qr.designs] == [A, B, C]  # D and E fail at index 1
    assert qr.accuracy == [1.0, 0.0, 1.0]


def test_config_rejects_zero_samples():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="samples"):
        ClassifierTraining(samples=0)


# ---------------------------------------------------------------- label_rule="accuracy"


def test_accuracy_label_ignores_cost_and_rewards():
    # rewards rank the candidates the other way round (the accurate ones are expensive)
    labels = topology_classifier.label_rollouts([0.9, 0.8, 0.1, 0.0], [False, False, True, True], [0.0, 0.0, 1.0, 1.0],
                                   "accuracy", [0.0, 0.2, 0.9, 1.0])
    assert labels == [0, 0, 1, 1]
    assert topology_classifier.label_rollouts([0.9, 0.8, 0.1, 0.0], [False] * 4, [0.0] * 4, "median") == [1, 1, 0, 0]


def test_accuracy_label_defaults_to_correct_as_0_or_1():
    labels = topology_classifier.label_rollouts([0.0, 0.0, 0.0, 0.0], [False, True, True, False], [0.0] * 4, "accuracy")
    assert labels == [0, 1, 1, 0]


def test_accuracy_label_marks_the_shared_best_accuracy_good():
    labels = topology_classifier.label_rollouts([0.0] * 4, [True] * 4, [0.0] * 4, "accuracy", [1.0, 1.0, 1.0, 0.5])
    assert labels == [1, 1, 1, 0]


def test_generate_data_labels_by_mean_correctness_under_accuracy_rule():
    data = sampled_data(SampledRunner(), label_rule="accuracy")
    # accuracy [2/3, 1/3, 1, 1/2]: median 7/12
    assert all(qr.labels == [1, 0, 1, 0] for qr in data)


class CostlyCorrect(PlantedRunner):
    """Correct exactly with the planted edge, which makes a rollout 100x dearer."""

    def run(self, jobs):
        self.rollouts += len(jobs)
        return [FakeTrace(correct=PLANTED in d.edges, cost_usd=0.2 if PLANTED in d.edges else 0.002)
                for d, _ in jobs]


def test_accuracy_rule_labels_correct_candidates_good_whatever_they_cost():
    def propose(q):
        return [(PLANTED,), ((0, 1),), (PLANTED, (1, 3)), ((1, 2),)]

    by = {}
    for rule in ("median", "accuracy"):
        cfg = ClassifierTraining(n_candidates=4, label_rule=rule)
        by[rule] = topology_classifier.generate_data(questions(1), select(), propose, CostlyCorrect(), reward, cfg)[0].labels
    assert by["accuracy"] == [1, 0, 1, 0]
    assert by["median"] == [0, 1, 0, 1]  # reward = correct - 10·cost punishes the planted edge


def test_accuracy_rule_spread_is_measured_in_accuracy_not_reward():
    class AllCorrect(PlantedRunner):
        def run(self, jobs):
            self.rollouts += len(jobs)
            return [FakeTrace(correct=True, cost_usd=0.01 * len(d.edges)) for d, _ in jobs]

    def propose(q):
        return [((0, 1),), ((0, 1), (1, 2)), ((0, 1), (1, 2), (2, 3))]

    for rule, informative in (("median", True), ("accuracy", False)):
        cfg = ClassifierTraining(n_candidates=3, label_rule=rule, min_spread=0.05)
        qr = topology_classifier.generate_data(questions(1), select(), propose, AllCorrect(), reward, cfg)[0]
        assert qr.informative is informative, rule  # rewards span 0.2, accuracy spans 0
        if not informative:
            assert qr.labels == [0, 0, 0]


def test_bad_label_rule_message_lists_accuracy():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"median\|accuracy\|correct_cheap"):
        ClassifierTraining(label_rule="mean")
    ClassifierTraining(label_rule="accuracy")  # accepted


def test_resample_informative_reruns_only_queries_whose_first_run_separates_candidates():
    class Runner:
        """Query 0: right iff its DAG has an even edge count; query 1: every candidate always right."""

        def __init__(self):
            self.sample_index, self.rollouts, self.batches = 0, 0, []

        def run(self, jobs):
            self.rollouts += len(jobs)
            self.batches.append((self.sample_index, sorted({q.id for _, q in jobs})))
            return [FakeTrace(correct=(q.id.endswith("/1") or len(d.edges) % 2 == 0), cost_usd=0.0) for d, q in jobs]

    cfg = ClassifierTraining(n_candidates=6, samples=3, resample="informative", label_rule="accuracy", seed=3)
    runner = Runner()
    data = topology_classifier.generate_data(questions(2), select(), topology_classifier.random_proposer(len(ROLES), cfg), runner, reward, cfg)
    q0, q1 = (q.id for q in questions(2))
    assert runner.batches[0] == (0, [q0, q1])
    assert runner.batches[1:] == [(1, [q0]), (2, [q0])]
    k0, k1 = len(data[0].designs), len(data[1].designs)
    assert runner.rollouts == 3 * k0 + k1
    assert data[0].informative and not data[1].informative


def test_config_rejects_bad_resample():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="resample"):
        ClassifierTraining(resample="some")
