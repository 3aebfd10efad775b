"""Credit assignment for the mixture selector: baselines and the one REINFORCE loss. Pure.

Baselines (config `credit.baseline`), all giving b[g, n] for role n of design g:

- `none`: b = 0 — what the published HieraMAS code does.
- `moving_average`: b = an exponential moving average of role n's past effective rewards
  (keyed by role *name*); updated after the loss is computed, so b never depends on the
  current sample.
- `counterfactual` (COMA-style): for role n, b[g, n] = mean over k of the reward role n gets in
  design g with *only* role n's mixture replaced by a fresh draw a'_k ~ π(· | query, DAG) from
  the current policy. Because a'_k is drawn independently of the action actually taken, b does
  not depend on it and the estimator stays unbiased; because b keeps every other role's choice
  (and, through the cache's sample index, the same LLM noise), it removes the part of the reward
  that other roles' models explain. The extra rollouts are planned here
  (`counterfactual_jobs`) and run by the trainer through the executor and the rollout cache.
  Assumes the policy's per-role mixtures are conditionally independent given query and DAG.

`reinforce_loss` is the only policy-gradient loss in the project. Failed episodes are masked out
(never scored 0) by `loss_mask`, and counted by the caller. Shapes: G designs, N role positions,
K counterfactual draws per role.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

BASELINES = ("none", "moving_average", "counterfactual")


# ------------------------------------------------------------------------------------- loss

@dataclass(frozen=True)
class LossOut:
    """loss: the scalar to minimise; policy_loss / entropy: its parts (detached, for logging);
    episodes: designs that contributed (not failed, at least one unmasked role)."""

    loss: Tensor
    policy_loss: Tensor
    entropy: Tensor
    episodes: int


def loss_mask(valid: Tensor, failed: Tensor) -> Tensor:
    """`[G, N]` float mask: real role positions (`valid` [G, N] bool) of episodes not `failed` [G]."""
    return (valid & ~failed[:, None]).to(torch.float32)


def reinforce_loss(role_log_prob: Tensor, advantages: Tensor, mask: Tensor,
                   entropy: Tensor, beta: float) -> LossOut:
    """REINFORCE with per-role advantages and an entropy bonus.

    role_log_prob: [G, N] log π(role n's mixture | query, DAG), differentiable.
    advantages:    [G, N] R − b (treated as constants).
    mask:          [G, N] 1 for terms that count (see `loss_mask`), 0 otherwise.
    entropy:       [G] or [G, N] policy entropy (differentiable); averaged over kept episodes.
    beta:          entropy bonus weight.

    loss = −Σ_{g,n} mask·A·log π / G_kept − beta · mean_kept(entropy), G_kept = episodes with
    at least one unmasked role (a batch with none gives a zero loss that still backpropagates).
    """
    if role_log_prob.shape != advantages.shape or role_log_prob.shape != mask.shape:
        raise ValueError(f"shapes differ: log_prob {tuple(role_log_prob.shape)}, "
                         f"advantages {tuple(advantages.shape)}, mask {tuple(mask.shape)}")
    mask = mask.to(role_log_prob.dtype)
    kept = mask.sum(dim=1) > 0  # [G]
    n_kept = int(kept.sum())
    denom = max(n_kept, 1)
    policy_loss = -(mask * advantages.detach() * role_log_prob).sum() / denom
    if entropy.dim() == 2:
        ent_g = (entropy * mask).sum(dim=1)  # [G]
    else:
        ent_g = entropy
    ent = (ent_g * kept.to(ent_g.dtype)).sum() / denom
    loss = policy_loss - beta * ent
    return LossOut(loss, policy_loss.detach(), ent.detach(), n_kept)


# -------------------------------------------------------------------------------- baselines

class MovingAverageBaseline:
    """Per-role-name exponential moving average of effective rewards (state is checkpointed)."""

    def __init__(self, momentum: float) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"credit.momentum: must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.means: dict[str, float] = {}

    def values(self, roles: Sequence[Sequence[str]], n_max: int) -> Tensor:
        """b [G, N] for the role names of each design (0 for roles never seen, and padding)."""
        out = torch.zeros(len(roles), n_max)
        for g, names in enumerate(roles):
            for n, role in enumerate(names):
                out[g, n] = self.means.get(role, 0.0)
        return out

    def update(self, roles: Sequence[Sequence[str]], rewards: Tensor, mask: Tensor) -> None:
        """Fold this batch's mean reward per role ([G, N] rewards where mask [G, N] is set)."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for g, names in enumerate(roles):
            for n, role in enumerate(names):
                if mask[g, n] > 0:
                    sums[role] = sums.get(role, 0.0) + float(rewards[g, n])
                    counts[role] = counts.get(role, 0) + 1
        for role, total in sums.items():
            batch_mean = total / counts[role]
            old = self.means.get(role)
            self.means[role] = batch_mean if old is None else (
                self.momentum * old + (1.0 - self.momentum) * batch_mean)

    def state_dict(self) -> dict:
        return {"momentum": self.momentum, "means": dict(self.means)}

    def load_state_dict(self, state: dict) -> None:
        self.momentum = float(state["momentum"])
        self.means = {str(k): float(v) for k, v in state["means"].items()}


@dataclass(frozen=True)
class CounterfactualJob:
    """One extra rollout: design g with role n's mixture replaced by draw k."""

    g: int
    n: int
    k: int
    design: object  # mas.design.Design


def replace_mixture(design, n: int, mixture) -> object:
    """`design` with role n's mixture set to `mixture` (None: skipped); everything else kept."""
    mixtures = list(design.mixtures)
    mixtures[n] = mixture
    return dataclasses.replace(design, mixtures=tuple(mixtures))


def counterfactual_jobs(designs: Sequence, redraws: Sequence[Sequence]) -> list[CounterfactualJob]:
    """Plan the counterfactual rollouts.

    designs[g]: the design actually run; redraws[g][k]: an independent re-sample of design g from
    the current policy (same query, same DAG), whose role-n mixture is draw k for role n.
    Returns G·N·K jobs (N = design g's role count); a job equal to the original design is kept
    (it is a valid draw; the cache makes it free).
    """
    jobs = []
    for g, (design, draws) in enumerate(zip(designs, redraws)):
        for n in range(len(design.roles)):
            for k, draw in enumerate(draws):
                if tuple(draw.roles) != tuple(design.roles):
                    raise ValueError(f"redraw {k} of design {g} has roles {draw.roles}, expected {design.roles}")
                jobs.append(CounterfactualJob(g, n, k, replace_mixture(design, n, draw.mixtures[n])))
    return jobs


def counterfactual_baseline(cf_rewards: Tensor, cf_valid: Tensor) -> tuple[Tensor, Tensor]:
    """b [G, N] = mean over valid draws of cf_rewards [G, N, K]; also `ok` [G, N] (≥ 1 valid draw).

    cf_rewards[g, n, k]: role n's effective reward in job (g, n, k); cf_valid [G, N, K] is False
    for failed counterfactual episodes (left out of the mean, never counted as 0). Where no draw
    is valid, b = 0 and ok = False: the caller masks that role's term out of the loss.
    """
    w = cf_valid.to(cf_rewards.dtype)
    count = w.sum(dim=-1)  # [G, N]
    b = (cf_rewards * w).sum(dim=-1) / count.clamp(min=1.0)
    return b, count > 0


def gather_counterfactual(jobs: Sequence[CounterfactualJob], rewards: Sequence[Tensor | None],
                          shape: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """Arrange per-job results into cf_rewards / cf_valid `[G, N, K]`.

    rewards[j]: the effective-reward row [N] of job j's episode, or None when it failed.
    """
    cf = torch.zeros(shape)
    ok = torch.zeros(shape, dtype=torch.bool)
    for job, row in zip(jobs, rewards):
        if row is not None:
            cf[job.g, job.n, job.k] = row[job.n]
            ok[job.g, job.n, job.k] = True
    return cf, ok
