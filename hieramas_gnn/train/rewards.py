"""Cost-aware rewards with multi-level (node / system) attribution. Pure: no I/O, no state.

Reward shapes, for a grade `c` in {0, 1} and a cost `$` in USD (λ = `cost_lambda`, 1/USD):

- `linear`: r = c − λ·$            (unbounded below; cost always matters, even when wrong)
- `exp`:    r = c · exp(−λ·$)      (bounded in [0, 1]; a correct answer is worth 1 discounted
  smoothly by its price, a wrong one is worth 0 at any price)
- `hieramas`: the published HieraMAS reward, r = max(exp(−λ·$), 0.5) when correct and
  r = max(−exp(300·$), −2.5) when wrong. A correct answer is worth between 0.5 (floor
  `SOLVED_FLOOR`: however dear, solving beats failing) and 1; a wrong one between −1 (free) and
  −2.5 (floor `UNSOLVED_FLOOR`), its penalty growing with cost at the fixed rate
  `UNSOLVED_RATE` = 300 /USD (independent of λ: a wrong answer costing $0.003 is already at
  −e^0.9 ≈ −2.46). Wrong is always worse than right, and a cheap wrong answer is better than a
  dear one.

Multi-level attribution (HieraMAS): role n of design g gets

    R[g, n] = α[g, n] · shape(node_correct[g, n], node_cost[g, n])
            + (1 − α[g, n]) · shape(system_correct[g], system_cost[g])

where `node_cost` is the cost of role n's own calls and `system_cost` the whole design's cost.
α[g, n] = `alpha`, except α = 0 where role n's output cannot be graded (`correct is None`) or
the role was skipped (a skipped role made no calls: its choice is credited by the system only).
Shapes: G designs (graphs), N role positions (padded roles are masked by the caller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

SHAPES = ("linear", "exp", "hieramas")
SOLVED_FLOOR = 0.5      # `hieramas`: the least a correct answer is worth
UNSOLVED_RATE = 300.0   # `hieramas`: growth rate (1/USD) of a wrong answer's penalty with its cost
UNSOLVED_FLOOR = -2.5   # `hieramas`: the most a wrong answer can cost in reward


def shape_reward(correct: Any, cost_usd: Any, shape: str, cost_lambda: float) -> Any:
    """Cost-aware reward of grades `correct` (1/0) at `cost_usd` under `shape` (module docstring):
    the one definition of the reward formulas. Tensors compute in float32 and return a tensor;
    numpy arrays compute the same float32 values and return an array; Python scalars compute in
    float64 and return a float."""
    if isinstance(correct, Tensor) or isinstance(cost_usd, Tensor):
        return _shaped(torch.as_tensor(correct).to(torch.float32), torch.as_tensor(cost_usd).to(torch.float32),
                       shape, cost_lambda, _TORCH)
    if isinstance(correct, np.ndarray) or isinstance(cost_usd, np.ndarray):
        return shape_reward(torch.as_tensor(np.asarray(correct, dtype=np.float32)),
                            torch.as_tensor(np.asarray(cost_usd, dtype=np.float32)), shape, cost_lambda).numpy()
    return float(_shaped(float(correct), float(cost_usd), shape, cost_lambda, _SCALAR))


class _Ops(NamedTuple):
    exp: Callable[[Any], Any]
    at_least: Callable[[Any, float], Any]
    where: Callable[[Any, Any, Any], Any]


_TORCH = _Ops(torch.exp, lambda x, low: torch.clamp(x, min=low), torch.where)
_SCALAR = _Ops(lambda x: math.exp(min(x, 700.0)), max, lambda cond, a, b: a if cond else b)


def _shaped(correct: Any, cost: Any, shape: str, cost_lambda: float, ops: _Ops) -> Any:
    if shape == "linear":
        return correct - cost_lambda * cost
    if shape == "exp":
        return correct * ops.exp(-cost_lambda * cost)
    if shape == "hieramas":
        solved = ops.at_least(ops.exp(-cost_lambda * cost), SOLVED_FLOOR)
        unsolved = ops.at_least(-ops.exp(UNSOLVED_RATE * cost), UNSOLVED_FLOOR)
        return ops.where(correct > 0.5, solved, unsolved)
    raise ValueError(f"reward.shape: must be one of {', '.join(SHAPES)}, got {shape!r}")


@dataclass(frozen=True)
class Reward:
    """The reward of one cost weight: `reward(correct, cost_usd)` (tensors, arrays or scalars, as
    `shape_reward`) and `reward.of_trace(trace)` for one episode. Training, the design search,
    the fitted routers and the CLI all score with this."""

    shape: str
    cost_lambda: float

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"reward.shape: must be one of {', '.join(SHAPES)}, got {self.shape!r}")

    def __call__(self, correct: Any, cost_usd: Any) -> Any:
        return shape_reward(correct, cost_usd, self.shape, self.cost_lambda)

    def of_trace(self, trace: Any) -> float:
        """The system reward of one executed design (`mas.trace.Trace`)."""
        return self(bool(trace.correct), float(trace.cost_usd))


def reward_function(reward: Any) -> Reward:
    """The `Reward` of a run config's `reward` section (`config.RewardConfig`)."""
    return Reward(reward.shape, float(reward.cost_lambda))


@dataclass(frozen=True)
class RewardInputs:
    """What the reward needs from a batch of episodes, as tensors.

    node_correct:   [G, N] float, 1/0 where graded, NaN where not gradable or skipped.
    node_cost:      [G, N] USD spent by role n's own calls.
    skipped:        [G, N] bool, role n was skipped in design g.
    system_correct: [G] float 1/0, the final answer's grade.
    system_cost:    [G] USD of the whole design (decision call included).
    failed:         [G] bool, the episode failed (masked out of the loss, never scored 0).
    """

    node_correct: Tensor
    node_cost: Tensor
    skipped: Tensor
    system_correct: Tensor
    system_cost: Tensor
    failed: Tensor


def node_rewards(x: RewardInputs, *, shape: str, cost_lambda: float | Tensor, alpha: float) -> Tensor:
    """Effective reward per role, `[G, N]` (see the module docstring for the formula);
    `cost_lambda`: one λ, or a tensor [G] of one λ per design (a cost-conditioned policy)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"reward.alpha: must be in [0, 1], got {alpha}")
    gradable = ~torch.isnan(x.node_correct) & ~x.skipped  # [G, N]
    per_node = cost_lambda[:, None] if isinstance(cost_lambda, Tensor) else cost_lambda  # [G, 1]
    node = shape_reward(torch.nan_to_num(x.node_correct, nan=0.0), x.node_cost, shape, per_node)
    system = shape_reward(x.system_correct, x.system_cost, shape, cost_lambda)  # [G]
    a = torch.where(gradable, torch.full_like(node, alpha), torch.zeros_like(node))  # [G, N]
    return a * node + (1.0 - a) * system[:, None]


def system_rewards(x: RewardInputs, *, shape: str, cost_lambda: float | Tensor) -> Tensor:
    """System-level reward per design, `[G]` (`cost_lambda`: one λ or a tensor [G])."""
    return shape_reward(x.system_correct, x.system_cost, shape, cost_lambda)


def inputs_from_traces(traces: Sequence[Any], roles: Sequence[Sequence[str]], n_max: int) -> RewardInputs:
    """Collect `RewardInputs` from executor Traces (`mas/trace.py`), padding roles to `n_max`.

    traces[g] follows the Trace contract: `nodes` (per role: `correct` bool | None, `skipped`),
    `calls` (each with `role`, `cost_usd`), `correct`, `cost_usd`, `failed`. roles[g] lists the
    role names of design g in position order. Padding positions read as skipped and ungraded.
    """
    g = len(traces)
    node_correct = torch.full((g, n_max), float("nan"))
    node_cost = torch.zeros(g, n_max)
    skipped = torch.ones(g, n_max, dtype=torch.bool)
    system_correct = torch.zeros(g)
    system_cost = torch.zeros(g)
    failed = torch.zeros(g, dtype=torch.bool)
    for i, (trace, names) in enumerate(zip(traces, roles)):
        failed[i] = bool(trace.failed)
        system_correct[i] = float(bool(trace.correct))
        system_cost[i] = float(trace.cost_usd)
        by_role = _node_map(trace)
        spent = _cost_by_role(trace)
        for n, role in enumerate(names):
            node = by_role.get(role)
            is_skipped = node is None or bool(getattr(node, "skipped", False))
            skipped[i, n] = is_skipped
            node_cost[i, n] = spent.get(role, 0.0)
            correct = None if node is None else getattr(node, "correct", None)
            if correct is not None and not is_skipped:
                node_correct[i, n] = float(bool(correct))
    return RewardInputs(node_correct, node_cost, skipped, system_correct, system_cost, failed)


def _node_map(trace: Any) -> dict[str, Any]:
    nodes = trace.nodes
    if isinstance(nodes, dict):
        return dict(nodes)
    return {node.role: node for node in nodes}


def _cost_by_role(trace: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for call in trace.calls:
        role = getattr(call, "role", None)
        if role is not None:
            out[role] = out.get(role, 0.0) + float(call.cost_usd)
    return out
