"""`train/rewards.py` by its contract: one formula for tensors (float32), arrays and scalars,
mixed inputs, the config's reward function, system rewards, traces with partial node records, and
errors that name the field."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hieramas_gnn.config import RewardConfig
from hieramas_gnn.train.credit import loss_mask
from hieramas_gnn.train.rewards import (Reward, inputs_from_traces, node_rewards, reward_function, shape_reward,
                                        system_rewards)


@pytest.mark.parametrize("shape", ["linear", "exp", "hieramas"])
def test_a_tensor_on_either_side_gives_a_float32_tensor(shape):
    correct64 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    cost64 = torch.tensor([0.001, 0.002], dtype=torch.float64)
    want = torch.tensor([shape_reward(c, k, shape, 100.0) for c, k in ((1.0, 0.001), (0.0, 0.002))],
                        dtype=torch.float64)
    for correct, cost in ((correct64, cost64), (correct64, 0.001), (torch.tensor([True, False]), cost64)):
        got = shape_reward(correct, cost, shape, 100.0)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        if cost is cost64:
            assert torch.allclose(got.double(), want, atol=1e-6)


@pytest.mark.parametrize("shape", ["linear", "exp", "hieramas"])
def test_an_array_on_either_side_gives_an_array(shape):
    got = shape_reward(np.array([1.0, 0.0]), 0.001, shape, 100.0)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert np.allclose(got, [shape_reward(1.0, 0.001, shape, 100.0), shape_reward(0.0, 0.001, shape, 100.0)],
                       atol=1e-6)
    assert isinstance(shape_reward(1, np.array([0.001]), shape, 100.0), np.ndarray)


def test_an_unknown_shape_is_named():
    with pytest.raises(ValueError) as err:
        shape_reward(1.0, 0.0, "cubic", 1.0)
    assert str(err.value) == "reward.shape: must be one of linear, exp, hieramas, got 'cubic'"


def test_reward_function_reads_the_config():
    r = reward_function(RewardConfig(shape="hieramas", cost_lambda=300, alpha=0.5))
    assert r == Reward("hieramas", 300.0) and isinstance(r.cost_lambda, float)
    assert r(1, 0.001) == shape_reward(1, 0.001, "hieramas", 300.0)


def _trace(correct, calls, nodes, failed=False):
    return SimpleNamespace(correct=correct, failed=failed, cost_usd=sum(c.cost_usd for c in calls), calls=calls,
                           nodes=nodes)


def _call(role, usd):
    return SimpleNamespace(role=role, cost_usd=usd)


def test_system_rewards_are_the_shape_of_each_design_s_grade_and_cost():
    traces = [_trace(True, [_call("a", 0.002)], []), _trace(False, [_call("a", 0.001)], [])]
    x = inputs_from_traces(traces, [("a",), ("a",)], 1)
    got = system_rewards(x, shape="linear", cost_lambda=100.0)
    assert torch.allclose(got, torch.tensor([1.0 - 0.2, -0.1]))


def test_nodes_without_skipped_or_correct_fields_read_as_ran_and_ungraded():
    """A node record may carry only what it knows: no `skipped` means it ran, no `correct` means
    it is not graded; the batch tensors keep their dtypes so masks can be taken of them."""
    nodes = [SimpleNamespace(role="a", correct=True), SimpleNamespace(role="b")]
    traces = [_trace(True, [_call("a", 0.001), _call("b", 0.003)], nodes), _trace(False, [], [], failed=True)]
    x = inputs_from_traces(traces, [("a", "b"), ("a", "b")], 2)
    assert x.skipped.dtype == torch.bool and x.failed.dtype == torch.bool
    assert x.skipped[0].tolist() == [False, False] and x.skipped[1].tolist() == [True, True]
    assert x.node_correct[0, 0] == 1.0 and torch.isnan(x.node_correct[0, 1])
    assert x.failed.tolist() == [False, True]
    assert loss_mask(~x.skipped, x.failed).tolist() == [[1.0, 1.0], [0.0, 0.0]]
    r = node_rewards(x, shape="linear", cost_lambda=0.0, alpha=0.5)
    assert r[0].tolist() == [1.0, 1.0]  # a: 0.5 * 1 + 0.5 * 1; b ungraded: the system reward alone


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_0_1_is_named(alpha):
    x = inputs_from_traces([_trace(True, [], [])], [("a",)], 1)
    with pytest.raises(ValueError) as err:
        node_rewards(x, shape="exp", cost_lambda=0.0, alpha=alpha)
    assert str(err.value) == f"reward.alpha: must be in [0, 1], got {alpha}"
