"""The pure parts of two experiment commands: `experiments/frontier_recheck.py` (which committed
frontier point a label names, and when a re-run equals it) and `experiments/unseen_domain_rule.py`
(leave-one-domain-out between the global-design rule and the best-single rule)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.frontier_recheck import DEFAULT_POINTS, compare, committed_rows, label_overrides
from experiments.unseen_domain_rule import held_out_rules
from hieramas_gnn.train.cluster_search import Outcomes


def test_a_frontier_label_gives_its_folder_and_overrides():
    assert label_overrides("hieramas, lambda=300.0") == ("hieramas300", ["reward.shape=hieramas", "reward.cost_lambda=300.0"])
    name, sets = label_overrides("linear, lambda=0.0 [policy.arch.plurality=true, policy.arch.proposer_slots=7]")
    assert name == "linear0_plurality_proposer_slots"
    assert sets == ["reward.shape=linear", "reward.cost_lambda=0.0", "policy.arch.plurality=true",
                    "policy.arch.proposer_slots=7"]
    with pytest.raises(SystemExit, match="not a frontier label"):
        label_overrides("lambda 300")


def test_the_default_points_are_points_of_the_committed_frontiers():
    for task, labels in DEFAULT_POINTS.items():
        assert set(labels) <= set(committed_rows(task)["learned"]), task


def test_a_rerun_is_equal_only_when_accuracy_and_cost_and_the_single_models_agree():
    committed = {"learned": {"p": {"accuracy": 0.9, "cost_usd": 1e-4}},
                 "baselines": {"single:a": {"accuracy": 0.8}, "single:b": {"accuracy": 0.7}}}
    rows = [{"method": "hieramas", "accuracy": 0.9, "cost_usd": 1e-4},
            {"method": "single:a", "accuracy": 0.8}, {"method": "single:b", "accuracy": 0.7}]
    same = compare("t", "p", committed, rows, 1.0)
    assert same["equal"] and same["single_models_equal"]
    rows[0]["cost_usd"] = 1.01e-4
    assert not compare("t", "p", committed, rows, 1.0)["equal"]
    rows[0]["cost_usd"], rows[2]["accuracy"] = 1e-4, 0.71
    moved = compare("t", "p", committed, rows, 1.0)
    assert moved["equal"] and moved["single_models_moved"] == ["single:b"]


def _outcomes(r: np.ndarray) -> Outcomes:
    out = Outcomes(None, list(range(r.shape[1])), lambda t: 0.0)
    out.r, out.acc, out.cost = r, r.copy(), np.ones_like(r)
    return out


def test_leave_one_domain_out_fits_each_rule_on_the_other_domains():
    # rows 0-1: single models; row 2: a vote. Domains a, b, c, two questions each.
    r = np.array([[1, 1, 0, 0, 1, 1],    # single x: good on a and c
                  [0, 0, 1, 1, 0, 0],    # single y: good on b
                  [1, 1, 1, 1, 0, 0]],   # vote: good on a and b, bad on c
                 dtype=float)
    domains = np.array(["a", "a", "b", "b", "c", "c"])
    got = held_out_rules(_outcomes(r), [2], [0, 1], domains, {0: "x", 1: "y", 2: "vote"})
    by = {row["domain"]: row for row in got["domains"]}
    # held out c: the vote (4/4 on a, b) beats x (2/4) -> scores 0 on c; single x scores 1 there
    assert by["c"]["global"]["design"] == "vote" and by["c"]["global"]["reward"] == 0.0
    assert by["c"]["single"]["design"] == "x" and by["c"]["single"]["reward"] == 1.0
    # held out a: on b + c the vote and x tie (2/4; same cost) -> the name decides: vote; scores 1 on a
    assert by["a"]["global"]["reward"] == 1.0
    assert got["mean_heldout_reward"] == pytest.approx({"global": 1 / 3, "single": 2 / 3})
    assert got["better_rule"] == "single"
    # a tie keeps the global design (what the lookup runs today)
    assert held_out_rules(_outcomes(r[[0, 0]]), [1], [0], domains, {0: "x", 1: "x2"})["better_rule"] == "global"
