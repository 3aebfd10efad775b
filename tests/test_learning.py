"""Learning tests: stage-1 REINFORCE must actually learn on small planted problems, in seconds.

The problems run the real trainer step (`Stage1Trainer.train_step`: policy, sampling, rewards,
baseline, loss mask, optimizer) with a fake runner that grades a design by its mixtures, so a step
is a few milliseconds. The reward is `linear` with a large constant cost (every call costs the
same, so cost carries no signal): r = correct - 10. The baseline has to remove that offset; a
baseline added instead of subtracted (r + b ~ -20 for every sample) or dropped (r ~ -10) pushes
down whatever was sampled, the policy stays near uniform and the tests fail, on every seed.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hieramas_gnn.config import load_config
from hieramas_gnn.mas.testing import FakeClient
from hieramas_gnn.mas.trace import CallTrace, NodeTrace, Trace
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.build import build_training
from hieramas_gnn.train.stage1 import Stage1Trainer

MODELS = ("good", "meh", "bad")
POOL = "\n".join(["name: bandit", "models:"] + [
    f"  - {{name: {m}, litellm_model: sim/{m}, input_cost_per_token: 1.0e-6, output_cost_per_token: 1.0e-6, "
    f"profile: model {m}}}" for m in MODELS])
CALL_USD = 0.005  # per role call; two roles -> 0.01 USD -> lambda * cost = 10 reward units
SEEDS = (0, 1, 2)


def _trace(design, question, correct: bool, failed: bool = False) -> Trace:
    calls = [CallTrace(model=m.proposers[0], role=role, position="proposer", prompt_tokens=10,
                       completion_tokens=10, cost_usd=CALL_USD, latency_ms=1.0, cache_hit=False)
             for role, m in zip(design.roles, design.mixtures) if m is not None]
    nodes = [NodeTrace(index=i, role=role, correct=None, gradable=False) for i, role in enumerate(design.roles)]
    trace = Trace(task="synthetic", question_id=question.id, calls=calls, nodes=nodes, correct=correct)
    if failed:
        trace.fail("injected failure")
    return trace


class BanditRunner:
    """Correct exactly when role 0 proposes `good` (role 1's model never matters).

    `fail_counterfactual(question) -> bool`: the questions whose counterfactual rollouts (every
    `run` call of a step after its first one) fail; their own rollouts never do."""

    def __init__(self, fail_counterfactual=lambda q: False) -> None:
        self.fail_counterfactual = fail_counterfactual
        self.calls = 0

    def run(self, jobs):
        self.calls += 1
        counterfactual = self.calls % 2 == 0
        return [_trace(d, q, d.mixtures[0].proposers[0] == "good", counterfactual and self.fail_counterfactual(q))
                for d, q in jobs]


def _trainer(tmp_path, baseline: str, seed: int, runner=None, *extra: str) -> Stage1Trainer:
    (tmp_path / "bandit.yaml").write_text(POOL)
    cfg = load_config(None, [
        f"pool.name={tmp_path / 'bandit.yaml'}", "pool.decision=meh", "task.name=synthetic",
        "task.train_size=8", "task.val_size=2", "task.test_size=0", "roles.family=synthetic",
        "roles.names=[solver, verifier]", "policy.embedder=hashing", "policy.hashing_dim=8",
        f"policy.embed_cache={tmp_path / 'emb'}",
        "policy.arch={hidden: 16, layers: 1, heads: 2, k_proposers: 1, allow_skip: false}",
        "stage1.batch_size=8", "stage1.lr=0.05", "stage1.topologies=parallel", "stage1.dag_pool_size=1",
        "stage1.entropy_beta=0.0", "stage1.grad_clip=0", "reward.shape=linear", "reward.cost_lambda=1000",
        "reward.alpha=0", f"credit.baseline={baseline}", "credit.k=2", "credit.momentum=0.5",
        "tracking.wandb=disabled", "tracking.progress=false", f"run.seed={seed}",
        f"run.out_dir={tmp_path / 'run'}", "cache.mode='off'", *extra,
    ])
    setup = build_training(cfg, client=FakeClient(reply=lambda request: "unused"))
    setup = dataclasses.replace(setup, runner=runner or BanditRunner())
    return Stage1Trainer(cfg, setup, tracker=None)


@torch.no_grad()
def _p_good(trainer: Stage1Trainer, role: int = 0, n: int = 64, lam: float | None = None) -> float:
    """Share of `n` designs sampled at temperature 1 whose role `role` proposes `good` (at cost
    weight `lam` for a cost-conditioned policy)."""
    setup = trainer.setup
    questions = [setup.train[i % len(setup.train)] for i in range(n)]
    dags = [()] * n
    lams = None if lam is None else [lam] * n
    out = sample(setup.policy, setup.builder.batch(questions, dags, lams), decision=setup.decisions(lams),
                 mode="mixture", dags=dags, generator=torch.Generator().manual_seed(123))
    return sum(d.mixtures[role].proposers[0] == "good" for d in out.designs) / n


def _train(trainer: Stage1Trainer, steps: int) -> None:
    for _ in range(steps):
        trainer.train_step()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("baseline", ["counterfactual", "moving_average"])
def test_stage1_learns_the_best_model_of_the_role_that_matters(tmp_path, baseline, seed):
    trainer = _trainer(tmp_path, baseline, seed)
    before = _p_good(trainer)
    _train(trainer, 40)
    after = _p_good(trainer)
    assert before < 0.6, before  # not solved by the initial policy
    assert after >= 0.9, (before, after)


@pytest.mark.parametrize("seed", SEEDS)
def test_stage1_learns_when_half_the_counterfactual_rollouts_fail(tmp_path, seed):
    """Roles whose counterfactual draws all failed have no baseline: their terms are masked out
    (the other half of the batch still teaches), never kept with b = 0 (r ~ -10 would drown it)."""
    trainer = _trainer(tmp_path, "counterfactual", seed, BanditRunner(lambda q: int(q.id.rsplit("/", 1)[-1]) % 2 == 0))
    _train(trainer, 40)
    assert _p_good(trainer) >= 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_without_a_baseline_the_offset_reward_is_not_learned(tmp_path, seed):
    """The problem needs the baseline: with r ~ -10 for every design, the same budget learns nothing."""
    trainer = _trainer(tmp_path, "none", seed)
    _train(trainer, 40)
    assert _p_good(trainer) < 0.8


@pytest.mark.parametrize("seed", SEEDS)
def test_counterfactual_advantage_of_a_role_that_does_not_matter_is_zero(tmp_path, monkeypatch, seed):
    """Credit: role 1's model never changes the reward, so its counterfactual baseline equals its
    reward and its advantage is exactly 0; role 0's is not (it decides the grade)."""
    trainer = _trainer(tmp_path, "counterfactual", seed)
    captured = {}
    from hieramas_gnn.train import credit

    real = credit.reinforce_loss

    def spy(log_prob, advantages, mask, entropy, beta):
        captured["adv"], captured["mask"] = advantages.detach().clone(), mask.clone()
        return real(log_prob, advantages, mask, entropy, beta)

    monkeypatch.setattr(credit, "reinforce_loss", spy)
    metrics = trainer.train_step()
    adv = captured["adv"]
    mask = captured["mask"].float()
    assert metrics["train/advantage_abs"] == pytest.approx(float((adv.abs() * mask).sum() / mask.sum()), abs=1e-6)
    assert torch.all(adv[:, 1] == 0), adv
    assert adv[:, 0].abs().max() > 0.1, adv
    assert torch.all(adv.abs() <= 1.0 + 1e-6), adv  # |r - b| <= 1: the -10 offset cancels


def test_roles_without_a_valid_counterfactual_draw_give_no_gradient(tmp_path):
    """Every counterfactual rollout fails: no role has a valid baseline, so no term of the loss
    counts (never b = 0, which would leave the -10 offset as the advantage) and no weight moves."""
    trainer = _trainer(tmp_path, "counterfactual", 0, BanditRunner(lambda q: True))
    before = {k: v.clone() for k, v in trainer.setup.policy.state_dict().items()}
    metrics = trainer.train_step()
    assert metrics["train/failed"] == 0 and metrics["train/failed_rollouts"] > 0
    assert metrics["train/advantage_abs"] == 0.0 and metrics["policy/loss"] == 0.0
    after = trainer.setup.policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_temperature_anneals_geometrically_from_start_to_end():
    from hieramas_gnn.train.stage1 import temperature_at

    assert temperature_at(0, 2.0, 0.5, 10) == pytest.approx(2.0)
    assert temperature_at(5, 2.0, 0.5, 10) == pytest.approx(1.0)  # 2 x (1/4)^(1/2)
    assert temperature_at(10, 2.0, 0.5, 10) == pytest.approx(0.5)
    assert temperature_at(99, 2.0, 0.5, 10) == pytest.approx(0.5)
    assert temperature_at(1, 2.0, 0.5, 1) == pytest.approx(0.5)  # one annealing step: at the end after it
    assert temperature_at(7, 1.5, 1.5, 0) == pytest.approx(1.5)



def test_a_cost_conditioned_step_encodes_every_episode_at_its_own_lambda(tmp_path, monkeypatch):
    """With `reward.cost_lambda_range`, λ is a policy input: the step's batch and its
    counterfactual batch are built with each episode's own λ, and the rewards use it."""
    trainer = _warm(_trainer(tmp_path, "counterfactual", 0, None, "reward.cost_lambda_range=[10, 1000]",
                             "reward.cost_lambda_grid=3", "stage1.warm_start_bc=0.5"))
    drawn = trainer._batch()
    lams = [10.0, 1000.0, 31.6, 316.0, 10.0, 100.0, 1000.0, 50.0][: len(drawn[0])]
    monkeypatch.setattr(trainer, "_batch", lambda: (drawn[0], drawn[1], lams))
    builder = trainer.setup.builder
    seen = []
    real_batch = builder.batch

    def spy(queries, dags=None, cost_lambdas=None):
        seen.append(None if cost_lambdas is None else list(cost_lambdas))
        return real_batch(queries, dags, cost_lambdas)

    monkeypatch.setattr(builder, "batch", spy)
    # the decision model of an episode is that of its own λ (here: a different one on each side of 100)
    monkeypatch.setattr(type(trainer.setup), "decisions",
                        lambda self, ls: "meh" if ls is None else ["good" if lam < 100 else "bad" for lam in ls])
    runs = []
    real_run = trainer.setup.runner.run
    monkeypatch.setattr(trainer.setup.runner, "run", lambda jobs: runs.append(list(jobs)) or real_run(jobs))
    targets_at = []  # the warm-start pull's targets: the searched design at each episode's λ
    monkeypatch.setattr(type(trainer.setup), "warm_targets",
                        lambda self, qs, ls=None: targets_at.append(ls) or [self.warm_design] * len(qs))
    metrics = trainer.train_step()
    assert seen == [lams, lams]  # the step's batch, then the counterfactual draws' batch
    assert targets_at == [lams]
    assert metrics["policy/grad_norm"] > 0
    assert [d.decision for d, _ in runs[0]] == ["good" if lam < 100 else "bad" for lam in lams]
    correct = metrics["train/accuracy"]
    expected = correct - sum(lams) / len(lams) * 2 * CALL_USD  # reward = correct - λ x cost (2 calls)
    assert metrics["train/reward"] == pytest.approx(expected, abs=1e-4)


def test_a_step_samples_with_the_trainers_generator_at_the_scheduled_temperature(tmp_path, monkeypatch):
    """The episodes' mixtures are drawn in `mixture` mode on the batch's own DAGs, from the
    trainer's generator (runs are reproducible from the seed alone) at the annealed temperature;
    the counterfactual baseline draws with the same generator and temperature."""
    from hieramas_gnn.train import stage1
    from hieramas_gnn.train.stage1 import temperature_at

    trainer = _trainer(tmp_path, "counterfactual", 0, None, "stage1.temperature_start=2.0",
                       "stage1.temperature_end=0.5", "stage1.anneal_steps=5")
    seen, cf_seen = [], []
    real_sample, real_cf = stage1.sample, stage1.counterfactual_values

    def sample_spy(policy, batch, **kw):
        seen.append(kw)
        return real_sample(policy, batch, **kw)

    def cf_spy(setup, cfg, questions, dags, designs, temperature, gen, n_max, cost_lambdas=None):
        cf_seen.append((list(dags), temperature, gen))
        return real_cf(setup, cfg, questions, dags, designs, temperature, gen, n_max, cost_lambdas)

    monkeypatch.setattr(stage1, "sample", sample_spy)
    monkeypatch.setattr(stage1, "counterfactual_values", cf_spy)
    runs, logged = [], []
    real_run = trainer.setup.runner.run
    monkeypatch.setattr(trainer.setup.runner, "run", lambda jobs: runs.append(list(jobs)) or real_run(jobs))
    trainer.tracker = type("Tracker", (), {"run": None, "log_designs": lambda self, rows, step: logged.append(rows)})()
    for step in range(3):
        seen.clear()
        runs.clear()
        metrics = trainer.train_step()
        kw = seen[0]  # the episodes' draws (the counterfactual draws come after)
        expected = temperature_at(step, 2.0, 0.5, 5)
        assert kw["mode"] == "mixture" and kw["generator"] is trainer.gen
        assert kw["temperature"] == pytest.approx(expected) and expected != pytest.approx(1.0)
        assert metrics["policy/temperature"] == pytest.approx(expected)
        trainer._log_designs()  # the step's episodes: their questions and designs
        assert [(r["question"], r["design"]) for r in logged[-1]] == [(q.id, d.to_json()) for d, q in runs[0]][:16]
        assert cf_seen[-1][0] == list(kw["dags"]) and cf_seen[-1][1] == pytest.approx(expected)
        assert cf_seen[-1][2] is trainer.gen


class AlwaysRightRunner(BanditRunner):
    """Every design is right: REINFORCE with the counterfactual baseline has nothing to learn."""

    def run(self, jobs):
        return [_trace(d, q, True) for d, q in jobs]


def _warm(trainer: Stage1Trainer, per_question: bool = False) -> Stage1Trainer:
    """Give the trainer a searched design to pull towards: `bad` in both roles (per question:
    `bad` for even question numbers, `meh` for odd ones)."""
    from hieramas_gnn.mas.design import Design, Mixture

    roles = tuple(trainer.setup.builder.role_names)

    def design(model: str) -> Design:
        return Design(roles, tuple(Mixture((model,), model) for _ in roles), (), trainer.setup.decision)

    warm_designs = None
    if per_question:
        warm_designs = lambda qs: [design("bad" if int(q.id.rsplit("/", 1)[-1]) % 2 == 0 else "meh") for q in qs]
    trainer.setup = dataclasses.replace(trainer.setup, warm_design=design("bad"), warm_designs=warm_designs)
    return trainer


@pytest.mark.parametrize("bc", [0.5, 2.0])
def test_the_warm_start_pull_moves_the_policy_to_the_searched_design(tmp_path, bc):
    """With nothing for REINFORCE to learn, `stage1.warm_start_bc` alone moves the policy to the
    searched design (its weight added to the loss, towards the design, from 0.5 on)."""
    trainer = _warm(_trainer(tmp_path, "counterfactual", 0, AlwaysRightRunner(), f"stage1.warm_start_bc={bc}"))
    _train(trainer, 30)
    assert _p_bad(trainer) >= 0.9


def test_without_the_warm_start_pull_nothing_moves_the_policy(tmp_path):
    trainer = _warm(_trainer(tmp_path, "counterfactual", 0, AlwaysRightRunner(), "stage1.warm_start_bc=0"))
    _train(trainer, 30)
    assert _p_bad(trainer) < 0.6
    (tmp_path / "plain").mkdir()
    plain = _trainer(tmp_path / "plain", "counterfactual", 0, AlwaysRightRunner(), "stage1.warm_start_bc=0.5")
    _train(plain, 3)  # a pull weight without a searched design is no pull (and no error)
    assert plain.setup.warm_design is None


def test_the_warm_start_pull_follows_each_questions_own_design(tmp_path):
    trainer = _warm(_trainer(tmp_path, "counterfactual", 0, AlwaysRightRunner(), "stage1.warm_start_bc=2.0"),
                    per_question=True)
    _train(trainer, 30)
    setup = trainer.setup
    even = [q for q in setup.train if int(q.id.rsplit("/", 1)[-1]) % 2 == 0]
    odd = [q for q in setup.train if int(q.id.rsplit("/", 1)[-1]) % 2 == 1]
    assert even and odd
    assert _share(trainer, even, "bad") >= 0.8 and _share(trainer, odd, "meh") >= 0.8


@torch.no_grad()
def _share(trainer: Stage1Trainer, questions, model: str, n: int = 64) -> float:
    """Share of role-0 draws (temperature 1) proposing `model` over `n` draws on `questions`."""
    setup = trainer.setup
    qs = [questions[i % len(questions)] for i in range(n)]
    dags = [()] * n
    out = sample(setup.policy, setup.builder.batch(qs, dags), decision=setup.decision, mode="mixture",
                 dags=dags, generator=torch.Generator().manual_seed(123))
    return sum(d.mixtures[0].proposers[0] == model for d in out.designs) / n


def _p_bad(trainer: Stage1Trainer) -> float:
    return _share(trainer, list(trainer.setup.train), "bad")
