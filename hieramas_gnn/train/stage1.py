"""Stage 1: train the mixture selector with REINFORCE over a pool of random DAGs.

Each step: draw `batch_size` training queries (each repeated `samples_per_query` times) and one
DAG per query from a fixed pool of random DAGs (`mas.topologies.random_dag`, so the selector
does not overfit one graph); sample mixtures from the policy (`policy.sample`, mode `mixture`)
at the annealed temperature; run the designs through the runner (executor + client + cache,
batched with `run_many`); turn traces into per-role effective rewards (`train/rewards.py`);
subtract the configured baseline (`train/credit.py`; the counterfactual one runs its extra
rollouts through the same runner); one `reinforce_loss` step with an entropy bonus and gradient
clipping. Failed episodes are masked out and counted: `train/failed` (episodes of the batch),
`train/failed_rollouts` (all rollouts of the step, counterfactual ones included) and
`train/failure_reasons` ({reason: count}, also logged as a warning) so a failing backend is
visible in the metrics and on the console.

Every `val_every` steps the validation queries are answered by the designs the one choice
function (`policy/choose.py`, route `random`: no topology is learned yet) picks, and the policy with the best validation reward is kept (`best.pt`).
A cost-conditioned run (`setup.cost_grid`) validates every question at every grid λ and keeps a
policy only if its mean validation reward is higher AND it is not worse at any grid λ than the
policy kept so far (`keeps`): one set of weights serves every λ, so a step that pays at one λ
and costs at another is not kept, and the bundle stays at the searched design (the step-0 clone)
at each λ until validation says a step pays there without a loss elsewhere. Every
`checkpoint_every` steps `checkpoint.pt` stores policy, optimizer, step, baseline state and both
RNG states, so a run restarted on the same run folder continues where it stopped (every LLM call
it already paid for is in the rollout cache).
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hieramas_gnn.build import TrainingSetup, choice_settings
from hieramas_gnn.config import Config
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.draw import draw_design
from hieramas_gnn.mas.topologies import random_dag
from hieramas_gnn.policy.choose import DesignChooser
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.train import credit, rewards
from hieramas_gnn.train.warm_start import bc_loss, clone, first_questions

Edges = tuple[tuple[int, int], ...]
_log = logging.getLogger(__name__)


_HEAP_FROZEN = False


def freeze_heap() -> None:
    """Once per process: collect, then move every object alive now (imports, torch, the pool,
    the questions, the policy) out of the cyclic collector's reach (`gc.freeze`). What a
    training run allocates afterwards is collected as before; only the full collections no
    longer walk the long-lived start-up heap, each of which otherwise cost ~0.25 s of CPU over
    its ~500k objects (one every few replay steps: ~18% of a step's CPU). Frozen objects are
    still freed by reference counting."""
    global _HEAP_FROZEN
    if not _HEAP_FROZEN:
        _HEAP_FROZEN = True
        gc.collect()
        gc.freeze()


@dataclass
class Stage1Result:
    step: int
    best_val_reward: float
    best_step: int
    history: list[dict[str, float]] = field(default_factory=list)


def temperature_at(step: int, start: float, end: float, anneal: int) -> float:
    """Geometric annealing from `start` (step 0) to `end` (step >= anneal)."""
    frac = min(step, anneal) / max(anneal, 1)
    return float(start * (end / start) ** frac)


def dag_pool(n_roles: int, size: int, density: float, rng: np.random.Generator,
             kind: str = "random") -> list[Edges]:
    """`size` topologies over `n_roles` roles: random connected DAGs (duplicates allowed when
    few exist), or `parallel` (no edges)."""
    if kind == "parallel":
        return [() for _ in range(size)]
    return [random_dag(n_roles, density, rng) for _ in range(size)]


# --------------------------------------------------------------------------------- rewards

def effective_rewards(traces: Sequence[Any], designs: Sequence[Design], n_max: int, rc: Any,
                      cost_lambdas: Sequence[float] | None = None):
    """(RewardInputs, per-role effective rewards [G, N], system rewards [G]) of a batch;
    `cost_lambdas`: each episode's own λ (a cost-conditioned run), else `rc.cost_lambda`."""
    x = rewards.inputs_from_traces(traces, [d.roles for d in designs], n_max)
    lam = rc.cost_lambda if cost_lambdas is None else torch.tensor(list(cost_lambdas), dtype=torch.float32)
    r = rewards.node_rewards(x, shape=rc.shape, cost_lambda=lam, alpha=rc.alpha)
    return x, r, rewards.system_rewards(x, shape=rc.shape, cost_lambda=lam)


def counterfactual_values(setup: TrainingSetup, cfg: Config, questions: Sequence[Any], dags: Sequence[Edges],
                          designs: Sequence[Design], temperature: float, gen: torch.Generator,
                          n_max: int, cost_lambdas: Sequence[float] | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    """b [G, N], ok [G, N] of the counterfactual baseline and the traces of its rollouts."""
    k = cfg.credit.k
    with torch.no_grad():
        batch = setup.builder.batch(list(questions), list(dags), cost_lambdas)
        draws = [sample(setup.policy, batch, decision=setup.decisions(cost_lambdas), mode="mixture", dags=list(dags),
                        generator=gen, temperature=temperature).designs for _ in range(k)]
    per_design = [[draws[j][g] for j in range(k)] for g in range(len(designs))]
    jobs = credit.counterfactual_jobs(designs, per_design)
    unique: dict[tuple, int] = {}
    pairs = []
    for job in jobs:  # identical (design, query) pairs are run once
        key = (job.design, questions[job.g].id)
        if key not in unique:
            unique[key] = len(pairs)
            pairs.append((job.design, questions[job.g]))
    traces = setup.runner.run(pairs)
    if cost_lambdas is None:
        _, r, _ = effective_rewards(traces, [d for d, _ in pairs], n_max, cfg.reward)
        rows = [None if traces[unique[(j.design, questions[j.g].id)]].failed
                else r[unique[(j.design, questions[j.g].id)]] for j in jobs]
    else:  # each job's reward at its own episode's λ
        job_traces = [traces[unique[(j.design, questions[j.g].id)]] for j in jobs]
        _, r, _ = effective_rewards(job_traces, [j.design for j in jobs], n_max, cfg.reward,
                                    [cost_lambdas[j.g] for j in jobs])
        rows = [None if t.failed else r[i] for i, t in enumerate(job_traces)]
    cf, valid = credit.gather_counterfactual(jobs, rows, (len(designs), n_max, k))
    b, ok = credit.counterfactual_baseline(cf, valid)
    return b, ok, traces


# --------------------------------------------------------------------------------- the loop

class Stage1Trainer:
    """Holds the optimizer, RNGs and baseline state; `run()` trains to `stage1.steps`."""

    def __init__(self, cfg: Config, setup: TrainingSetup, tracker: Any) -> None:
        self.cfg, self.setup, self.tracker = cfg, setup, tracker
        freeze_heap()
        s1 = cfg.stage1
        self.opt = torch.optim.Adam(setup.policy.parameters(), lr=s1.lr, weight_decay=s1.weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.run.seed_for("stage1"))
        self.rng = np.random.default_rng(cfg.run.seed_for("stage1"))
        self.n_roles = len(setup.builder.role_names)
        self.dags = dag_pool(self.n_roles, s1.dag_pool_size, s1.dag_density, self.rng, s1.topologies)
        self.moving = credit.MovingAverageBaseline(cfg.credit.momentum)
        self.step = 0
        self.best = (float("-inf"), -1)
        self.best_per_lambda: list[float] | None = None  # a cost-conditioned run: the kept policy's, per grid λ
        self.spent_usd = 0.0
        self.history: list[dict[str, float]] = []
        self.dir = Path(cfg.run.dir)

    # ------------------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"policy": self.setup.policy.state_dict(), "optimizer": self.opt.state_dict(),
                "step": self.step, "best": self.best, "best_per_lambda": self.best_per_lambda,
                "spent_usd": self.spent_usd,
                "torch_rng": self.gen.get_state(), "numpy_rng": self.rng.bit_generator.state,
                "moving_average": self.moving.state_dict(), "dags": self.dags}

    def load(self, state: dict) -> None:
        self.setup.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.best, self.spent_usd = state["step"], tuple(state["best"]), state["spent_usd"]
        self.best_per_lambda = state.get("best_per_lambda")
        self.gen.set_state(state["torch_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.moving.load_state_dict(state["moving_average"])
        self.dags = [tuple(tuple(e) for e in d) for d in state["dags"]]

    def save(self, name: str) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)  # atomic: a kill mid-save leaves the previous checkpoint
        return path

    def maybe_resume(self) -> bool:
        path = self.dir / "checkpoint.pt"
        if not path.exists():
            return False
        self.load(torch.load(path, weights_only=False))
        return True

    # ------------------------------------------------------------------------------ steps
    def _batch(self) -> tuple[list[Any], list[Edges], list[float] | None]:
        s1 = self.cfg.stage1
        idx = self.rng.choice(len(self.setup.train), size=min(s1.batch_size, len(self.setup.train)),
                              replace=False)
        questions = [self.setup.train[int(i)] for i in idx for _ in range(s1.samples_per_query)]
        dags = [self.dags[int(self.rng.integers(len(self.dags)))] for _ in idx]
        lams = None
        grid = self.setup.cost_grid
        if grid is not None:  # a cost-conditioned run: each query's λ log-uniform over the range
            drawn = np.exp(self.rng.uniform(np.log(grid.lo), np.log(grid.hi), size=len(idx)))
            lams = [float(v) for v in drawn for _ in range(s1.samples_per_query)]
        return questions, [d for d in dags for _ in range(s1.samples_per_query)], lams

    def train_step(self) -> dict[str, float]:
        cfg, s1, setup = self.cfg, self.cfg.stage1, self.setup
        temp = temperature_at(self.step, s1.temperature_start, s1.temperature_end, s1.anneal)
        questions, dags, lams = self._batch()
        setup.policy.train()
        batch = setup.builder.batch(questions, dags, lams)
        out = sample(setup.policy, batch, decision=setup.decisions(lams),
                     mode="mixture", dags=dags, generator=self.gen, temperature=temp)
        n_max = out.role_log_prob.size(1)
        traces = setup.runner.run(list(zip(out.designs, questions)))
        x, r, system = effective_rewards(traces, out.designs, n_max, cfg.reward, lams)
        ok = torch.ones_like(out.role_mask)
        extra: list[Any] = []
        if cfg.credit.baseline == "counterfactual":
            b, ok, extra = counterfactual_values(setup, cfg, questions, dags, out.designs, temp, self.gen, n_max,
                                                 lams)
        elif cfg.credit.baseline == "moving_average":
            b = self.moving.values([d.roles for d in out.designs], n_max)
        else:
            b = torch.zeros_like(r)
        mask = credit.loss_mask(out.role_mask & ok, x.failed)
        loss = credit.reinforce_loss(out.role_log_prob, r - b, mask, out.entropy, s1.entropy_beta)
        total = loss.loss
        if s1.warm_start_bc > 0 and setup.warm_design is not None:  # pull towards the searched design(s)
            total = total + s1.warm_start_bc * bc_loss(setup.policy, batch, setup.warm_targets(questions, lams), dags)
        self.opt.zero_grad()
        total.backward()
        grad_norm = _clip(setup.policy.parameters(), s1.grad_clip)
        self.opt.step()
        self.moving.update([d.roles for d in out.designs], r, credit.loss_mask(out.role_mask, x.failed))
        self.step += 1
        return self._metrics(traces, extra, x, system, r - b, mask, loss, grad_norm, temp, out.designs, questions)

    def _metrics(self, traces, extra, x, system, adv, mask, loss, grad_norm, temp, designs, questions):
        ok = ~x.failed
        all_traces = list(traces) + list(extra)
        calls = [c for t in all_traces for c in t.calls]
        spent = float(sum(t.cost_usd for t in all_traces))
        self.spent_usd += spent
        self._last = (designs, questions, traces, system)
        n_ok = max(int(ok.sum()), 1)
        return {
            "train/reward": float(system[ok].sum()) / n_ok,
            "train/accuracy": float(x.system_correct[ok].sum()) / n_ok,
            "train/cost_usd": float(x.system_cost[ok].sum()) / n_ok,
            "train/failed": int(x.failed.sum()),
            "train/failed_rollouts": sum(bool(t.failed) for t in all_traces),
            "train/failure_reasons": failure_reasons(all_traces, f"step {self.step}"),
            "train/rollouts": len(all_traces),
            "train/advantage_abs": float((adv.abs() * mask).sum() / mask.sum().clamp(min=1)),
            "policy/loss": float(loss.loss.detach()), "policy/entropy": float(loss.entropy),
            "policy/temperature": temp, "policy/grad_norm": grad_norm,
            "llm/cost_usd": spent, "llm/cost_usd_total": self.spent_usd, "llm/calls": len(calls),
            "llm/cache_hit_rate": sum(bool(c.cache_hit) for c in calls) / max(len(calls), 1),
            **self._client_costs(),
        }

    def _client_costs(self) -> dict[str, float]:
        """Paid now / cached / total of this process's LLM client so far (`ClientStats.cost_metrics`);
        `llm/cost_usd` and `llm/cost_usd_total` above count the rollouts' cost, paid now or cached."""
        runner = self.setup.runner
        client = getattr(runner, "client", None)
        stats = getattr(client, "stats", None) if client is not None else getattr(runner, "stats", None)
        return stats.cost_metrics() if hasattr(stats, "cost_metrics") else {}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation reward of the designs the choice function picks before any topology is
        learned (route `random`: the greedy mixtures on one per-query candidate DAG)."""
        setup, rc = self.setup, self.cfg.reward
        settings = choice_settings(self.cfg, "random", setup.decision)
        chooser = DesignChooser(setup.policy, setup.builder, settings, setup.cost_grid)
        questions, lams = list(setup.val), None
        if setup.cost_grid is not None:  # every validation question at every grid λ
            lams = [lam for lam in setup.cost_grid.lambdas for _ in setup.val]
            questions = [q for _ in setup.cost_grid.lambdas for q in setup.val]
        designs = chooser.designs(questions, lams)
        traces = setup.runner.run(list(zip(designs, questions)))
        x, _, system = effective_rewards(traces, designs, len(self.setup.builder.role_names), rc, lams)
        ok = ~x.failed
        n_ok = max(int(ok.sum()), 1)
        per_lambda = {}
        if lams is not None:  # the mean validation reward at each grid λ (its questions that did not fail)
            n_val = len(setup.val)
            for k, lam in enumerate(setup.cost_grid.lambdas):
                part = slice(k * n_val, (k + 1) * n_val)
                per_lambda[f"eval/val_reward@{lam:g}"] = float(system[part][ok[part]].sum()) / max(int(ok[part].sum()), 1)
        return {"eval/val_reward": float(system[ok].sum()) / n_ok, **per_lambda,
                "eval/val_accuracy": float(x.system_correct[ok].sum()) / n_ok,
                "eval/val_cost_usd": float(x.system_cost[ok].sum()) / n_ok,
                "eval/val_failed": int(x.failed.sum()),
                "eval/val_failure_reasons": failure_reasons(traces, f"validation at step {self.step}")}

    def warm_start(self) -> dict[str, float]:
        """Step 0 of a warm-started run: clone the searched design (per query: its cluster's),
        validate it (so `best.pt` holds it unless training beats it) and checkpoint (a resumed run
        never clones twice)."""
        s1, setup = self.cfg.stage1, self.setup
        queries = first_questions(self.cfg, setup.train, s1.warm_start_queries)
        lams = None
        if setup.cost_grid is not None:  # every training query at every grid λ, cloned to that λ's design
            lams = [lam for lam in setup.cost_grid.lambdas for _ in queries]
            queries = [q for _ in setup.cost_grid.lambdas for q in queries]
        done = clone(setup.policy, setup.builder, setup.warm_targets(queries, lams), queries, self.dags,
                     s1.warm_start_steps, cost_lambdas=lams)
        metrics = {f"warm_start/{k}": v for k, v in done.items()}
        metrics.update(self._validate_and_keep())
        self.tracker.log(metrics, 0)
        self.save("checkpoint.pt")
        return metrics

    def run(self) -> Stage1Result:
        s1, tc = self.cfg.stage1, self.cfg.tracking
        if self.step == 0 and self.setup.warm_design is not None and not (self.dir / "checkpoint.pt").exists():
            self.history.append(self.warm_start())
        self.tracker.progress(total=s1.steps, initial=self.step, desc="stage1")
        while self.step < s1.steps:
            metrics = self.train_step()
            if self.step % s1.val_every == 0 or self.step == s1.steps:
                metrics.update(self._validate_and_keep())
            if self.step % tc.log_every == 0 or "eval/val_reward" in metrics:
                self.tracker.log(metrics, self.step)
            if self.step % tc.designs_every == 0 or self.step == s1.steps:
                self._log_designs()
            if self.step % s1.checkpoint_every == 0 or self.step == s1.steps:
                self.save("checkpoint.pt")
            self.history.append(metrics)
            self.tracker.advance()
        if hasattr(self.tracker, "end_progress"):
            self.tracker.end_progress()
        best = self.dir / "best.pt"
        if best.exists():
            self.tracker.log_checkpoint(best, "best")
        return Stage1Result(self.step, self.best[0], self.best[1], self.history)

    def _validate_and_keep(self) -> dict[str, float]:
        val = self.validate()
        per_lambda = None
        if self.setup.cost_grid is not None:
            per_lambda = [val[f"eval/val_reward@{lam:g}"] for lam in self.setup.cost_grid.lambdas]
        if keeps(val["eval/val_reward"], per_lambda, self.best[0], self.best_per_lambda):
            self.best = (val["eval/val_reward"], self.step)
            self.best_per_lambda = per_lambda
            self.save("best.pt")
        val["eval/best_val_reward"] = self.best[0]
        return val

    def _log_designs(self) -> None:
        designs, questions, traces, system = self._last
        rows = [{"question": q.id, "design": d.to_json() if hasattr(d, "to_json") else repr(d),
                 "correct": t.correct, "cost_usd": t.cost_usd, "reward": float(s), "failed": t.failed}
                for d, q, t, s in zip(designs, questions, traces, system)]
        self.tracker.log_designs(rows[:16], self.step)
        if self.tracker.run is not None and designs:
            path = draw_design(designs[0], self.dir / "topology" / f"step{self.step}.png",
                               title=f"step {self.step}: {questions[0].id}")
            self.tracker.log_image("train/topology", path, self.step)


def keeps(reward: float, per_lambda: Sequence[float] | None, best: float,
          best_per_lambda: Sequence[float] | None) -> bool:
    """Whether a validated policy replaces the kept one: a higher mean validation reward and, in
    a cost-conditioned run (`per_lambda`: the reward at each grid λ), no grid λ where it is worse
    than the kept policy. Without a grid (or before anything is kept) the mean alone decides."""
    if not reward > best:
        return False
    if per_lambda is None or best_per_lambda is None or len(best_per_lambda) != len(per_lambda):
        return True
    return all(new >= old - 1e-12 for new, old in zip(per_lambda, best_per_lambda))


def failure_reasons(traces: Sequence[Any], where: str, top: int = 5) -> dict[str, int]:
    """{reason: count} of the failed traces (the `top` most common, reasons cut to 200 chars);
    a non-empty result is also logged as a warning naming `where`."""
    counts = Counter(str(t.failure_reason or "unknown")[:200] for t in traces if t.failed)
    if counts:
        _log.warning("stage 1 %s: %d of %d rollouts failed: %s", where, sum(counts.values()),
                     len(traces), "; ".join(f"{n} x {r}" for r, n in counts.most_common(top)))
    return dict(counts.most_common(top))


def _clip(params, max_norm: float) -> float:
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def train_stage1(cfg: Config, setup: TrainingSetup, tracker: Any) -> Stage1Result:
    """Train (resuming from `cfg.run.dir/checkpoint.pt` when present) and return the result.

    On return the policy holds the best-validation weights."""
    trainer = Stage1Trainer(cfg, setup, tracker)
    trainer.maybe_resume()
    result = trainer.run()
    best = Path(cfg.run.dir) / "best.pt"
    if best.exists():
        setup.policy.load_state_dict(torch.load(best, weights_only=False)["policy"])
    return result
