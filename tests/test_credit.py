"""Baselines and the REINFORCE loss, including the counterfactual baseline on a toy bandit."""

import pytest
import torch

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.train.credit import (
    MovingAverageBaseline, counterfactual_baseline, counterfactual_jobs, gather_counterfactual,
    loss_mask, reinforce_loss, replace_mixture,
)

# ------------------------------------------------------------------------------ toy bandit
# Two roles, three arms each, a factorised softmax policy; reward depends on both roles' arms
# (role 1's arm 2 is the "strong expensive model" that dominates the reward) plus noise.
TABLE = torch.tensor([[0.2, 0.5, 3.0],
                      [0.6, 0.1, 3.2],
                      [0.3, 0.4, 2.9]])  # TABLE[a0, a1]
LOGITS = [torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.0, 0.4, -0.3])]


def _probs():
    return [torch.softmax(l, 0) for l in LOGITS]


def _bandit_batch(n, k, seed):
    """Sample n episodes; return actions [n, 2], rewards [n], and counterfactual b for role 0."""
    gen = torch.Generator().manual_seed(seed)
    p0, p1 = _probs()
    a0 = torch.multinomial(p0, n, replacement=True, generator=gen)
    a1 = torch.multinomial(p1, n, replacement=True, generator=gen)
    noise = 0.5 * torch.randn(n, generator=gen)
    r = TABLE[a0, a1] + noise
    redraw = torch.multinomial(p0, n * k, replacement=True, generator=gen).view(n, k)
    cf = (TABLE[redraw, a1[:, None]] + noise[:, None])[:, None, :]  # [n, 1, K] same noise
    b, ok = counterfactual_baseline(cf, torch.ones_like(cf, dtype=torch.bool))
    assert ok.all()
    return a0, r, b[:, 0]


def test_counterfactual_baseline_expectation_equals_expected_reward():
    p0, p1 = _probs()
    expected = float(p0 @ TABLE @ p1)
    _, r, b = _bandit_batch(200_000, k=3, seed=0)
    se = float(b.std()) / (len(b) ** 0.5)
    assert abs(float(b.mean()) - expected) < 5 * se + 1e-3


def _per_sample_grads(a0, adv):
    """d/dlogits0 of log π(a0) · A for each sample: (onehot(a0) − π0) · A, [n, 3]."""
    p0 = _probs()[0]
    return (torch.nn.functional.one_hot(a0, 3).float() - p0) * adv[:, None]


def test_counterfactual_gradient_has_the_same_mean_and_lower_variance():
    a0, r, b = _bandit_batch(200_000, k=3, seed=1)
    g_none = _per_sample_grads(a0, r)
    g_cf = _per_sample_grads(a0, r - b)
    se = (g_none.std(0) + g_cf.std(0)) / (len(r) ** 0.5)
    assert torch.all((g_none.mean(0) - g_cf.mean(0)).abs() < 5 * se)
    assert torch.all(g_cf.var(0) < 0.5 * g_none.var(0))


def test_counterfactual_gradient_mean_matches_exact_policy_gradient():
    p0, p1 = _probs()
    logits0 = LOGITS[0].clone().requires_grad_(True)
    exact = torch.autograd.grad(torch.softmax(logits0, 0) @ TABLE @ p1, logits0)[0]
    a0, r, b = _bandit_batch(200_000, k=2, seed=2)
    g_cf = _per_sample_grads(a0, r - b)
    se = g_cf.std(0) / (len(r) ** 0.5)
    assert torch.all((g_cf.mean(0) - exact).abs() < 5 * se + 1e-3)


# ---------------------------------------------------------------------------------- loss

def test_reinforce_loss_gradient_is_minus_mean_advantage_weighted_score():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    adv = torch.tensor([[1.0, -1.0], [2.0, 0.5]])
    out = reinforce_loss(logp, adv, torch.ones(2, 2), torch.zeros(2, requires_grad=True), beta=0.0)
    out.loss.backward()
    assert torch.allclose(logp.grad, -adv / 2)


def test_failed_episodes_are_masked_not_scored_zero():
    logp = torch.zeros(3, 2, requires_grad=True)
    adv = torch.ones(3, 2)
    mask = loss_mask(torch.ones(3, 2, dtype=torch.bool), torch.tensor([False, True, False]))
    out = reinforce_loss(logp, adv, mask, torch.zeros(3), beta=0.0)
    out.loss.backward()
    assert out.episodes == 2
    assert torch.all(logp.grad[1] == 0) and torch.allclose(logp.grad[0], torch.full((2,), -0.5))


def test_all_failed_batch_gives_zero_loss_that_backpropagates():
    logp = torch.zeros(2, 2, requires_grad=True)
    mask = loss_mask(torch.ones(2, 2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
    out = reinforce_loss(logp, torch.ones(2, 2), mask, torch.zeros(2), beta=0.1)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.episodes == 0


def test_entropy_bonus_lowers_the_loss():
    logp = torch.zeros(1, 1, requires_grad=True)
    ent = torch.tensor([2.0], requires_grad=True)
    out = reinforce_loss(logp, torch.zeros(1, 1), torch.ones(1, 1), ent, beta=0.5)
    out.loss.backward()
    assert out.loss.item() == -1.0 and ent.grad.item() == -0.5


def test_reinforce_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        reinforce_loss(torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2, 3), torch.zeros(2), 0.0)


# ----------------------------------------------------------------------- moving average

def test_moving_average_starts_at_first_batch_mean_then_decays():
    ma = MovingAverageBaseline(momentum=0.5)
    roles = [("a", "b"), ("a", "b")]
    ma.update(roles, torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.ones(2, 2))
    assert ma.values(roles, 2)[0].tolist() == [2.0, 0.0]
    ma.update(roles, torch.tensor([[0.0, 4.0], [0.0, 4.0]]), torch.ones(2, 2))
    assert ma.values(roles, 2)[0].tolist() == [1.0, 2.0]


def test_moving_average_ignores_masked_terms_and_unknown_roles_read_zero():
    ma = MovingAverageBaseline(momentum=0.9)
    ma.update([("a",)], torch.tensor([[5.0]]), torch.zeros(1, 1))
    assert ma.values([("a", "z")], 3).tolist() == [[0.0, 0.0, 0.0]]


def test_moving_average_state_round_trips():
    ma = MovingAverageBaseline(momentum=0.8)
    ma.update([("a",)], torch.tensor([[1.5]]), torch.ones(1, 1))
    other = MovingAverageBaseline(momentum=0.1)
    other.load_state_dict(ma.state_dict())
    assert other.means == {"a": 1.5} and other.momentum == 0.8


# ------------------------------------------------------------------------- counterfactual

def _design(models):
    return Design(roles=("r0", "r1"), mixtures=tuple(Mixture((m,), m) for m in models),
                  edges=((0, 1),), decision="d")


def test_replace_mixture_changes_only_that_role():
    d = _design(["x", "y"])
    new = replace_mixture(d, 1, Mixture(("z",), "z"))
    assert new.mixtures[0] == d.mixtures[0] and new.mixtures[1].proposers == ("z",)
    assert new.edges == d.edges and new.decision == d.decision


def test_counterfactual_jobs_cover_every_role_and_draw():
    d = _design(["x", "y"])
    draws = [_design(["p", "q"]), _design(["s", "t"])]
    jobs = counterfactual_jobs([d], [draws])
    assert len(jobs) == 4
    j = next(j for j in jobs if (j.n, j.k) == (1, 0))
    assert [m.proposers[0] for m in j.design.mixtures] == ["x", "q"]


def test_counterfactual_baseline_skips_failed_draws_and_flags_roles_without_any():
    cf = torch.tensor([[[1.0, 3.0], [2.0, 2.0]]])
    valid = torch.tensor([[[True, False], [False, False]]])
    b, ok = counterfactual_baseline(cf, valid)
    assert b.tolist() == [[1.0, 0.0]] and ok.tolist() == [[True, False]]


def test_gather_counterfactual_places_each_jobs_role_reward():
    d = _design(["x", "y"])
    jobs = counterfactual_jobs([d], [[_design(["p", "q"])]])
    rows = [torch.tensor([0.1, 0.2]), None]
    cf, ok = gather_counterfactual(jobs, rows, (1, 2, 1))
    assert cf[0, 0, 0].item() == pytest.approx(0.1) and ok.tolist() == [[[True], [False]]]
