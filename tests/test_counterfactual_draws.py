"""The counterfactual baseline of one stage-1 batch, checked against a reference computed by hand.

`counterfactual_values` must (1) draw each role's k replacement mixtures from the policy on the
episode's own query, DAG and cost weight, at the step's temperature, from the trainer's generator,
(2) run each (design, query) pair once, and (3) average the replaced rollouts' rewards at the
episode's own λ. The reference below redoes each of these steps with the public pieces (`sample`,
`credit.counterfactual_jobs`, the reward formula), so a changed argument anywhere in the chain
(another DAG, no DAG, another temperature, the global RNG, the fixed λ instead of the episode's)
gives other draws or other baselines. The policy's weights are scaled up (`SHARPEN`) so that its
draws depend visibly on every input; at initialisation the logits barely move with the DAG or λ.

Not checked because they cannot change the baseline: the decision model of the draws (a
counterfactual design keeps its episode's decision) and passing the DAG twice (to the batch and to
`sample(dags=...)`, which re-encodes with the DAG it is given).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hieramas_gnn.policy.sample import sample
from hieramas_gnn.train import credit
from hieramas_gnn.train.stage1 import counterfactual_values
from tests.test_learning import CALL_USD, BanditRunner, _trainer

DAGS = [((0, 1),), (), ((0, 1),), ((0, 2), (1, 2)), (), ((0, 1), (1, 2)), ((0, 2),), ()]
TEMPERATURE = 0.5
SHARPEN = 2.0


class Recorder(BanditRunner):
    """The bandit runner that also keeps every (design, question) pair it was asked to run."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list = []

    def run(self, jobs):
        self.pairs += list(jobs)
        return super().run(jobs)


def _setup(tmp_path, *extra: str):
    """The planted bandit of the learning tests with three roles and k = 3 draws per role."""
    runner = Recorder()
    trainer = _trainer(tmp_path, "counterfactual", 0, runner, "roles.names=[solver, verifier, planner]",
                       "credit.k=3", *extra)
    with torch.no_grad():  # large weights: the draws then depend visibly on every input (DAG, λ)
        for param in trainer.setup.policy.parameters():
            param.mul_(SHARPEN)
    return trainer.cfg, trainer.setup, runner


def _episodes(setup, lams):
    questions = list(setup.train)
    with torch.no_grad():
        out = sample(setup.policy, setup.builder.batch(questions, DAGS, lams), decision=setup.decisions(lams),
                     mode="mixture", dags=DAGS, generator=torch.Generator().manual_seed(1))
    return questions, out.designs, out.role_log_prob.size(1)


def _reference_draws(setup, cfg, questions, lams, seed: int):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        batch = setup.builder.batch(questions, DAGS, lams)
        return [sample(setup.policy, batch, decision=setup.decisions(lams), mode="mixture", dags=DAGS,
                       generator=gen, temperature=TEMPERATURE).designs for _ in range(cfg.credit.k)]


@pytest.mark.parametrize("conditioned", [False, True], ids=["fixed_lambda", "cost_conditioned"])
def test_counterfactual_baseline_matches_the_reference(tmp_path, conditioned):
    extra = ["reward.cost_lambda_range=[10, 2000]", "reward.cost_lambda_grid=3"] if conditioned else []
    cfg, setup, runner = _setup(tmp_path, *extra)
    assert len(setup.train) == len(DAGS)
    lams = [10.0, 2000.0, 50.0, 900.0, 10.0, 300.0, 2000.0, 75.0] if conditioned else None
    questions, designs, n_max = _episodes(setup, lams)

    torch.manual_seed(12345)  # the global RNG is not the trainer's: a draw from it gives other designs
    b, ok, traces = counterfactual_values(setup, cfg, questions, DAGS, designs, TEMPERATURE,
                                          torch.Generator().manual_seed(7), n_max, lams)

    draws = _reference_draws(setup, cfg, questions, lams, 7)
    k = cfg.credit.k
    per_design = [[draws[j][g] for j in range(k)] for g in range(len(designs))]
    jobs = credit.counterfactual_jobs(designs, per_design)
    assert all(job.design.edges == designs[job.g].edges for job in jobs)  # the episode's own DAG
    expected_pairs = list(dict.fromkeys((job.design, questions[job.g].id) for job in jobs))
    assert [(d, q.id) for d, q in runner.pairs] == expected_pairs  # each distinct pair run once, in order
    assert len(traces) == len(expected_pairs)

    # the reward of a rollout: correct (role 0 proposes `good`) minus λ x its cost, at the episode's λ
    expected = torch.zeros(len(designs), n_max)
    counts = torch.zeros(len(designs), n_max)
    for job in jobs:
        lam = cfg.reward.cost_lambda if lams is None else lams[job.g]
        calls = sum(m is not None for m in job.design.mixtures)
        reward = float(job.design.mixtures[0].proposers[0] == "good") - lam * CALL_USD * calls
        expected[job.g, job.n] += reward
        counts[job.g, job.n] += 1
    assert bool(ok.all()) and bool((counts == k).all())
    assert torch.allclose(b, expected / counts, atol=1e-4), (b, expected / counts)



class FailingRecorder(Recorder):
    """Every rollout of the questions whose id ends in an even number fails."""

    def run(self, jobs):
        traces = super().run(jobs)
        for (_, q), trace in zip(jobs, traces):
            if int(q.id.rsplit("/", 1)[-1]) % 2 == 0:
                trace.fail("injected failure")
        return traces


@pytest.mark.parametrize("conditioned", [False, True], ids=["fixed_lambda", "cost_conditioned"])
def test_failed_counterfactual_rollouts_give_no_baseline(tmp_path, conditioned):
    """A role whose k replaced rollouts all failed has no valid baseline (ok = False), at a fixed
    λ and at per-episode λs alike; the others keep theirs."""
    extra = ["reward.cost_lambda_range=[10, 2000]", "reward.cost_lambda_grid=3"] if conditioned else []
    cfg, setup, _ = _setup(tmp_path, *extra)
    setup = dataclasses.replace(setup, runner=FailingRecorder())
    lams = [10.0, 2000.0, 50.0, 900.0, 10.0, 300.0, 2000.0, 75.0] if conditioned else None
    questions, designs, n_max = _episodes(setup, lams)
    b, ok, _ = counterfactual_values(setup, cfg, questions, DAGS, designs, TEMPERATURE,
                                     torch.Generator().manual_seed(7), n_max, lams)
    failing = torch.tensor([int(q.id.rsplit("/", 1)[-1]) % 2 == 0 for q in questions])
    assert 0 < int(failing.sum()) < len(questions)
    assert not ok[failing].any() and ok[~failing].all()
    assert torch.isfinite(b[~failing]).all()
