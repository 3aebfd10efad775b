"""Cost-aware reward shapes and multi-level (node / system) attribution."""

import math

import pytest
import torch

from hieramas_gnn.train.rewards import (
    SHAPES, RewardInputs, inputs_from_traces, node_rewards, shape_reward,
)

NAN = float("nan")


def _inputs(node_correct, node_cost, skipped, sys_correct, sys_cost):
    return RewardInputs(
        node_correct=torch.tensor(node_correct, dtype=torch.float32),
        node_cost=torch.tensor(node_cost, dtype=torch.float32),
        skipped=torch.tensor(skipped),
        system_correct=torch.tensor(sys_correct, dtype=torch.float32),
        system_cost=torch.tensor(sys_cost, dtype=torch.float32),
        failed=torch.zeros(len(sys_correct), dtype=torch.bool),
    )


def test_linear_shape_subtracts_lambda_times_cost():
    r = shape_reward(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]), "linear", 2.0)
    assert torch.allclose(r, torch.tensor([0.0, -1.0]))


def test_exp_shape_is_bounded_and_zero_when_wrong():
    r = shape_reward(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 10.0, 0.1]), "exp", 1.0)
    assert r[0] == 1.0 and 0.0 < r[1] < 1e-4 and r[2] == 0.0


def test_exp_shape_prefers_the_cheaper_correct_answer():
    r = shape_reward(torch.tensor([1.0, 1.0]), torch.tensor([0.01, 0.02]), "exp", 50.0)
    assert r[0] > r[1]
    assert math.isclose(float(r[0]), math.exp(-0.5), rel_tol=1e-6)


def test_scalar_shape_matches_tensor_shape():
    for shape in ("linear", "exp"):
        t = shape_reward(torch.tensor([1.0]), torch.tensor([0.03]), shape, 7.0)
        assert math.isclose(float(t[0]), shape_reward(True, 0.03, shape, 7.0), rel_tol=1e-6)


def test_unknown_shape_raises_naming_the_field():
    with pytest.raises(ValueError, match="reward.shape"):
        shape_reward(torch.ones(1), torch.zeros(1), "log", 1.0)


def test_node_reward_mixes_node_and_system_by_alpha():
    x = _inputs([[1.0, 0.0]], [[0.0, 0.0]], [[False, False]], [0.0], [0.0])
    r = node_rewards(x, shape="linear", cost_lambda=0.0, alpha=0.25)
    assert torch.allclose(r, torch.tensor([[0.25, 0.0]]))


def test_ungradable_role_gets_system_reward_only():
    x = _inputs([[NAN, 1.0]], [[0.0, 0.0]], [[False, False]], [1.0], [0.0])
    r = node_rewards(x, shape="linear", cost_lambda=0.0, alpha=0.9)
    assert r[0, 0] == 1.0  # system reward, alpha forced to 0


def test_skipped_role_gets_system_reward_only():
    x = _inputs([[0.0, 1.0]], [[0.0, 0.0]], [[True, False]], [1.0], [0.0])
    r = node_rewards(x, shape="linear", cost_lambda=0.0, alpha=1.0)
    assert torch.allclose(r, torch.tensor([[1.0, 1.0]]))


def test_alpha_zero_is_pure_system_reward():
    x = _inputs([[1.0, 0.0], [0.0, 1.0]], [[0.1, 0.2], [0.0, 0.0]], [[False] * 2] * 2, [0.0, 1.0], [0.3, 0.0])
    r = node_rewards(x, shape="exp", cost_lambda=1.0, alpha=0.0)
    assert torch.allclose(r[0], torch.zeros(2)) and torch.allclose(r[1], torch.ones(2))


def test_node_level_uses_the_roles_own_cost():
    x = _inputs([[1.0, 1.0]], [[0.0, 1.0]], [[False, False]], [1.0], [1.0])
    r = node_rewards(x, shape="linear", cost_lambda=1.0, alpha=1.0)
    assert torch.allclose(r, torch.tensor([[1.0, 0.0]]))


class _Node:
    def __init__(self, role, correct, skipped=False):
        self.role, self.correct, self.skipped = role, correct, skipped


class _Call:
    def __init__(self, role, cost_usd):
        self.role, self.cost_usd = role, cost_usd


class _Trace:
    def __init__(self, nodes, calls, correct, failed=False):
        self.nodes, self.calls, self.correct, self.failed = nodes, calls, correct, failed
        self.cost_usd = sum(c.cost_usd for c in calls)


def test_inputs_from_traces_reads_grades_costs_and_pads():
    t = _Trace([_Node("a", True), _Node("b", None), _Node("c", None, skipped=True)],
               [_Call("a", 0.1), _Call("a", 0.2), _Call("b", 0.05), _Call(None, 0.01)], correct=True)
    x = inputs_from_traces([t], [("a", "b", "c")], n_max=4)
    assert x.node_correct[0, 0] == 1.0 and torch.isnan(x.node_correct[0, 1:]).all()
    assert torch.allclose(x.node_cost[0], torch.tensor([0.3, 0.05, 0.0, 0.0]))
    assert x.skipped[0].tolist() == [False, False, True, True]
    assert x.system_correct[0] == 1.0 and math.isclose(float(x.system_cost[0]), 0.36, rel_tol=1e-6)


def test_inputs_from_traces_marks_failed_episodes():
    t = _Trace([_Node("a", None)], [], correct=None, failed=True)
    x = inputs_from_traces([t], [("a",)], n_max=1)
    assert bool(x.failed[0]) and x.system_correct[0] == 0.0


def test_hieramas_shape_discounts_a_correct_answer_down_to_half():
    r = shape_reward(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.0, 0.1, 100.0]), "hieramas", 2.0)
    assert torch.allclose(r, torch.tensor([1.0, math.exp(-0.2), 0.5]))


def test_hieramas_shape_penalises_a_wrong_answer_more_the_dearer_it_is_down_to_minus_2_5():
    r = shape_reward(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.001, 1.0]), "hieramas", 2.0)
    assert torch.allclose(r, torch.tensor([-1.0, -math.exp(0.3), -2.5]))


def test_hieramas_wrong_penalty_does_not_depend_on_lambda():
    a = shape_reward(torch.tensor([0.0]), torch.tensor([0.002]), "hieramas", 0.0)
    b = shape_reward(torch.tensor([0.0]), torch.tensor([0.002]), "hieramas", 50.0)
    assert torch.equal(a, b)


def test_hieramas_scalar_matches_tensor_shape_even_at_huge_cost():
    for correct, cost in ((True, 0.01), (False, 0.0005), (False, 1e6), (True, 1e6)):
        t = shape_reward(torch.tensor([float(correct)]), torch.tensor([cost]), "hieramas", 3.0)
        assert shape_reward(correct, cost, "hieramas", 3.0) == pytest.approx(float(t), rel=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_one_reward_function_gives_the_same_value_for_scalars_arrays_and_tensors(shape):
    import numpy as np

    from hieramas_gnn.train.rewards import Reward

    reward = Reward(shape, 250.0)
    correct, cost = [1, 0, 1, 0], [0.0, 0.001, 0.004, 0.02]
    as_tensor = reward(torch.tensor(correct, dtype=torch.float32), torch.tensor(cost))
    as_array = reward(np.array(correct), np.array(cost))
    assert isinstance(as_array, np.ndarray) and isinstance(as_tensor, torch.Tensor)
    for i, (c, k) in enumerate(zip(correct, cost)):
        scalar = reward(bool(c), k)
        assert isinstance(scalar, float)
        assert scalar == pytest.approx(float(as_tensor[i]), rel=1e-6, abs=1e-7)
        assert float(as_array[i]) == float(as_tensor[i])
    trace = type("T", (), {"correct": True, "cost_usd": 0.004})()
    assert reward.of_trace(trace) == reward(True, 0.004)
    with pytest.raises(ValueError, match="reward.shape"):
        Reward("quadratic", 1.0)
