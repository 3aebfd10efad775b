"""Topology route `edges`: train the policy's own edge head with REINFORCE (the design card's
G-Designer-like route), after stage 1 and with the stage-1 mixtures frozen.

Each step: draw `batch_size` training queries; sample a DAG per query from the edge head (node
order by Plackett-Luce, forward edges by Bernoulli; `policy.sample` mode `dag`, whose
`edge_log_prob` is the exact marginal log P(DAG)); the mixtures are the greedy stage-1 ones
conditioned on that DAG (what the `edges` route of `policy/choose.py` runs at inference); run the
designs through the runner (client + cache); system reward (cost-aware, `train/rewards.py`);
subtract the configured baseline:

- `none`: plain REINFORCE;
- `moving_average`: an exponential moving average of the system reward;
- `counterfactual`: per design, the mean reward of `k` other DAGs drawn from the edge head for the
  same query **with the design's mixtures held fixed** (re-sampling the topology only), run
  through the same runner (cached, so repeated draws are free).

Only `policy.edge_head` is in the optimizer (the encoder and the mixture head stay as stage 1
left them); failed episodes are masked out. Every `val_every` steps the greedy `edges` design is
validated and the best edge head is kept; `edges_checkpoint.pt` makes a killed run resumable
(every paid call is in the rollout cache). Metrics are logged on the `edges/step` axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hieramas_gnn.build import TrainingSetup
from hieramas_gnn.config import EdgesConfig, RewardConfig
from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.train import credit, rewards

AXIS = "edges/step"


@dataclass
class EdgesResult:
    step: int
    best_val_reward: float
    best_step: int
    rollouts: int
    history: list[dict[str, float]] = field(default_factory=list)


def system_reward(traces: Sequence[Any], designs: Sequence[Any], rc: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(system rewards [G], failed [G]) of a batch."""
    n_max = max((len(d.roles) for d in designs), default=1)
    x = rewards.inputs_from_traces(traces, [d.roles for d in designs], n_max)
    return rewards.system_rewards(x, shape=rc.shape, cost_lambda=rc.cost_lambda), x.failed


class EdgesTrainer:
    """REINFORCE on the edge head (see the module docstring); `run()` trains to `ec.steps`."""

    def __init__(self, ec: EdgesConfig, reward_cfg: RewardConfig, setup: TrainingSetup, settings: ChoiceSettings, seed: int,
                 run_dir: Path, log: Callable[..., None] | None = None) -> None:
        self.ec, self.rc, self.setup, self.log = ec, reward_cfg, setup, log
        self.settings = replace(settings, route="edges")
        self.policy = setup.policy
        self.opt = torch.optim.Adam(self.policy.edge_head.parameters(), lr=ec.lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.moving = credit.MovingAverageBaseline(ec.momentum)
        self.step, self.best, self.rollouts = 0, (float("-inf"), -1), 0
        self.history: list[dict[str, float]] = []
        self.dir = Path(run_dir)

    # ------------------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"edge_head": self.policy.edge_head.state_dict(), "optimizer": self.opt.state_dict(),
                "step": self.step, "best": self.best, "rollouts": self.rollouts,
                "torch_rng": self.gen.get_state(), "numpy_rng": self.rng.bit_generator.state,
                "moving_average": self.moving.state_dict()}

    def load(self, state: dict) -> None:
        self.policy.edge_head.load_state_dict(state["edge_head"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.best, self.rollouts = state["step"], tuple(state["best"]), state["rollouts"]
        self.gen.set_state(state["torch_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.moving.load_state_dict(state["moving_average"])

    def save(self, name: str, state: dict | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        torch.save(state if state is not None else self.state(), tmp)
        tmp.replace(self.dir / name)  # atomic: a kill mid-save leaves the previous file

    def maybe_resume(self) -> bool:
        path = self.dir / "edges_checkpoint.pt"
        if path.exists():
            self.load(torch.load(path, weights_only=False))
            return True
        return False

    # ------------------------------------------------------------------------------ steps
    def _run(self, designs: Sequence[Any], questions: Sequence[Any]) -> list[Any]:
        self.rollouts += len(designs)
        return self.setup.runner.run(list(zip(designs, questions)))

    def _counterfactual(self, questions: Sequence[Any], designs: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """b [G] and ok [G]: mean reward of k re-drawn DAGs per design, mixtures held fixed."""
        k, g = self.ec.k, len(designs)
        with torch.no_grad():
            batch = self.setup.builder.batch([q for q in questions for _ in range(k)])
            redraw = sample(self.policy, batch, decision=self.settings.decision, mode="dag",
                            mixtures=[d.mixtures for d in designs for _ in range(k)], generator=self.gen,
                            temperature=self.ec.temperature).designs
        traces = self._run(redraw, [q for q in questions for _ in range(k)])
        r, failed = system_reward(traces, redraw, self.rc)  # [G*k]
        r, ok = r.view(g, k), (~failed).view(g, k).float()
        n = ok.sum(dim=1)  # [G]
        return (r * ok).sum(dim=1) / n.clamp(min=1), n > 0

    def train_step(self) -> dict[str, float]:
        ec, setup = self.ec, self.setup
        idx = self.rng.choice(len(setup.train), size=min(ec.batch_size, len(setup.train)), replace=False)
        questions = [setup.train[int(i)] for i in idx]
        self.policy.train()
        out = sample(self.policy, setup.builder.batch(questions), decision=self.settings.decision, mode="dag",
                     generator=self.gen, temperature=ec.temperature)
        traces = self._run(out.designs, questions)
        r, failed = system_reward(traces, out.designs, self.rc)  # [G]
        ok = torch.ones_like(failed)
        if ec.baseline == "counterfactual":
            b, ok = self._counterfactual(questions, out.designs)
        elif ec.baseline == "moving_average":
            b = self.moving.values([["dag"]] * len(questions), 1)[:, 0]
        else:
            b = torch.zeros_like(r)
        mask = credit.loss_mask(ok[:, None].bool(), failed)  # [G, 1]
        loss = credit.reinforce_loss(out.edge_log_prob[:, None], (r - b)[:, None], mask, out.entropy, ec.entropy_beta)
        self.opt.zero_grad()
        loss.loss.backward()
        grads = [p.grad.norm() for p in self.policy.edge_head.parameters() if p.grad is not None]
        grad_norm = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0
        self.opt.step()
        self.moving.update([["dag"]] * len(questions), r[:, None], credit.loss_mask(torch.ones_like(mask).bool(), failed))
        self.step += 1
        kept = ~failed
        n = max(int(kept.sum()), 1)
        return {"edges/reward": float(r[kept].sum()) / n, "edges/failed": int(failed.sum()),
                "edges/edges_per_dag": float(np.mean([len(d.edges) for d in out.designs])),
                "edges/loss": float(loss.loss.detach()), "edges/entropy": float(loss.entropy),
                "edges/grad_norm": grad_norm, "edges/rollouts": self.rollouts}

    @torch.no_grad()
    def validate(self) -> float:
        chooser = DesignChooser(self.policy, self.setup.builder, self.settings, self.setup.cost_grid)
        designs = chooser.designs(self.setup.val)
        traces = self._run(designs, self.setup.val)
        r, failed = system_reward(traces, designs, self.rc)
        kept = ~failed
        return float(r[kept].sum()) / max(int(kept.sum()), 1)

    def run(self) -> EdgesResult:
        ec = self.ec
        while self.step < ec.steps:
            metrics = self.train_step()
            if self.step % ec.val_every == 0 or self.step == ec.steps:
                val = self.validate()
                if val > self.best[0]:
                    self.best = (val, self.step)
                    self.save("edges_best.pt", {"edge_head": self.policy.edge_head.state_dict()})
                metrics.update({"edges/val_reward": val, "edges/best_val_reward": self.best[0]})
            if self.log:
                self.log(metrics, self.step, axis=AXIS)
            self.history.append(metrics)
            if self.step % ec.checkpoint_every == 0 or self.step == ec.steps:
                self.save("edges_checkpoint.pt")
        best = self.dir / "edges_best.pt"
        if best.exists():
            self.policy.edge_head.load_state_dict(torch.load(best, weights_only=False)["edge_head"])
        return EdgesResult(self.step, self.best[0], self.best[1], self.rollouts, self.history)
