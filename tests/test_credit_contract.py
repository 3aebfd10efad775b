"""`train/credit.py` by its contract: the dtypes its callers rely on and the error naming a bad
redraw."""

from __future__ import annotations

import pytest
import torch

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.train.credit import (CounterfactualJob, counterfactual_jobs, gather_counterfactual, loss_mask,
                                       reinforce_loss)


def test_loss_mask_is_float32():
    mask = loss_mask(torch.ones(2, 3, dtype=torch.bool), torch.tensor([False, True]))
    assert mask.dtype == torch.float32 and mask.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_reinforce_loss_keeps_the_log_prob_dtype_whatever_the_mask_dtype():
    logp = torch.zeros(2, 2, requires_grad=True)
    out = reinforce_loss(logp, torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64), torch.zeros(2), 0.0)
    assert out.loss.dtype == torch.float32


def test_gathered_validity_is_bool():
    jobs = [CounterfactualJob(0, 0, 0, None), CounterfactualJob(0, 1, 1, None)]
    cf, ok = gather_counterfactual(jobs, [torch.tensor([0.5, 0.0]), None], (1, 2, 2))
    assert ok.dtype == torch.bool and ok.tolist() == [[[True, False], [False, False]]]
    assert cf.tolist() == [[[0.5, 0.0], [0.0, 0.0]]]


def test_a_redraw_with_other_roles_is_named():
    d = Design(("r0", "r1"), (Mixture(("x",), "x"), Mixture(("y",), "y")), ((0, 1),), "d")
    other = Design(("r0", "r2"), (Mixture(("x",), "x"), Mixture(("y",), "y")), ((0, 1),), "d")
    with pytest.raises(ValueError) as err:
        counterfactual_jobs([d], [[d, other]])
    assert str(err.value) == "redraw 1 of design 0 has roles ('r0', 'r2'), expected ('r0', 'r1')"


def test_per_role_entropy_is_summed_over_unmasked_roles_and_averaged_over_kept_episodes():
    logp = torch.zeros(3, 2, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])  # episode 2 has no unmasked role
    entropy = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = reinforce_loss(logp, torch.zeros(3, 2), mask, entropy, beta=0.5)
    assert out.episodes == 2 and out.entropy.item() == (1.0 + 3.0 + 4.0) / 2
    assert out.loss.item() == -0.5 * 4.0


def test_episode_entropy_is_averaged_over_kept_episodes_and_the_policy_part_is_reported():
    logp = torch.tensor([[-1.0], [-2.0]], requires_grad=True)
    out = reinforce_loss(logp, torch.tensor([[1.0], [0.5]]), torch.ones(2, 1), torch.tensor([1.0, 3.0]), beta=0.1)
    assert out.entropy.item() == 2.0
    assert out.policy_loss.item() == pytest.approx((1.0 * 1.0 + 0.5 * 2.0) / 2)
    assert out.loss.item() == pytest.approx(1.0 - 0.1 * 2.0)
