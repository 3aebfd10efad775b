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
from typing import Any, Sequence

import torch
from torch import Tensor

SHAPES = ("linear", "exp", "hieramas")
SOLVED_FLOOR = 0.5      # `hieramas`: the least a correct answer is worth
UNSOLVED_RATE = 300.0   # `hieramas`: growth rate (1/USD) of a wrong answer's penalty with its cost
UNSOLVED_FLOOR = -2.5   # `hieramas`: the most a wrong answer can cost in reward


def shape_reward(correct: Tensor, cost_usd: Tensor, shape: str, cost_lambda: float) -> Tensor:
    """Cost-aware reward of grades `correct` (0/1 floats) at `cost_usd`; any matching shapes."""
    correct = correct.to(torch.float32)
    cost_usd = cost_usd.to(torch.float32)
    if shape == "linear":
        return correct - cost_lambda * cost_usd
    if shape == "exp":
        return correct * torch.exp(-cost_lambda * cost_usd)
    if shape == "hieramas":
        solved = torch.clamp(torch.exp(-cost_lambda * cost_usd), min=SOLVED_FLOOR)
        unsolved = torch.clamp(-torch.exp(UNSOLVED_RATE * cost_usd), min=UNSOLVED_FLOOR)
        return torch.where(correct > 0.5, solved, unsolved)
    raise ValueError(f"reward.shape: must be one of {', '.join(SHAPES)}, got {shape!r}")


def shape_reward_scalar(correct: bool, cost_usd: float, shape: str, cost_lambda: float) -> float:
    """`shape_reward` for one episode, as a Python float."""
    if shape == "linear":
        return float(correct) - cost_lambda * cost_usd
    if shape == "exp":
        return float(correct) * math.exp(-cost_lambda * cost_usd)
    if shape == "hieramas":
        if correct:
            return max(math.exp(-cost_lambda * cost_usd), SOLVED_FLOOR)
        return max(-math.exp(min(UNSOLVED_RATE * cost_usd, 700.0)), UNSOLVED_FLOOR)
    raise ValueError(f"reward.shape: must be one of {', '.join(SHAPES)}, got {shape!r}")


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


def node_rewards(x: RewardInputs, *, shape: str, cost_lambda: float, alpha: float) -> Tensor:
    """Effective reward per role, `[G, N]` (see the module docstring for the formula)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"reward.alpha: must be in [0, 1], got {alpha}")
    gradable = ~torch.isnan(x.node_correct) & ~x.skipped  # [G, N]
    node = shape_reward(torch.nan_to_num(x.node_correct, nan=0.0), x.node_cost, shape, cost_lambda)
    system = shape_reward(x.system_correct, x.system_cost, shape, cost_lambda)  # [G]
    a = torch.where(gradable, torch.full_like(node, alpha), torch.zeros_like(node))  # [G, N]
    return a * node + (1.0 - a) * system[:, None]


def system_rewards(x: RewardInputs, *, shape: str, cost_lambda: float) -> Tensor:
    """System-level reward per design, `[G]`."""
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
