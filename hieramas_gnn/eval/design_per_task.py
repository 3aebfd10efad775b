"""`best_design_per_task`: the best simple design of each task, chosen on train + val *with* the
task label — what a careful user who knows every question's task would deploy.

Per task label (`peer_routers.task_label`: a mixed task's component), the family of simple
designs the design search uses (`train/warm_start.family`: single models, votes of up to
`max_voters` one-proposer roles, a mixture of the `top` models, plurality votes of 3..`top` of
them in two tie orders) is built from the task's single-model ranking (reward on its train + val
questions), every design is run on at most `limit` of those questions through the same client
(its cache: free on replay), and the one with the best mean reward wins (ties: cheaper, then the
name). A test question of a task the fit never saw (out of distribution) runs the best single
model overall as a one-model design.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hieramas_gnn.eval.peer_routers import task_label
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.executor import Job, run_many
from hieramas_gnn.tasks.base import Question


@dataclass
class DesignsPerTask:
    """The chosen design per task label, the fallback, and each task's search table."""

    designs: dict[str, Design]
    fallback: Design
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def design_for(self, q: Question) -> Design:
        return self.designs.get(task_label(q), self.fallback)

    def describe(self) -> dict[str, str]:
        return {label: d.summary() for label, d in self.designs.items()}


def candidate_designs(roleset: Any, ranked: Sequence[str], by_accuracy: Sequence[str], by_cost: Sequence[str],
                      top: int = 5, max_voters: int = 3) -> list[Design]:
    """The searched family for one task (module docstring); the decision model is the most
    accurate single model of the task, called only when the roles disagree."""
    from hieramas_gnn.train.warm_start import family, lone_roles  # lazy: loads torch

    roles = list(roleset.names)
    voters = lone_roles(roleset, roles)
    top = min(top, len(ranked))
    return family(roles, voters, ranked, [by_accuracy[0]], "all", max_voters, top,
                  moa_sizes=[k for k in (3,) if k <= top], plurality_sizes=range(3, top + 1),
                  by_accuracy=[m for m in by_accuracy if m in ranked[:top]],
                  by_cost=[m for m in by_cost if m in ranked[:top]])


def single_design(roleset: Any, model: str) -> Design:
    """`model` alone (one gradable role, every other skipped)."""
    from hieramas_gnn.train.warm_start import (  # lazy: loads torch
        lone_roles,
        vote_design,
    )

    roles = list(roleset.names)
    return vote_design(roles, lone_roles(roleset, roles)[:1], (model,), model, "all")


async def fit_designs_per_task(task: Any, roleset: Any, client: Any, questions: Sequence[Question],
                               outcomes: Any, reward: Callable[[np.ndarray, np.ndarray], np.ndarray],
                               best_single: str, limit: int = 200, max_in_flight: int = 32,
                               top: int = 5) -> DesignsPerTask:
    """Search the family per task label on (at most `limit` of) `questions` (train + val, whose
    single-model outcomes are `outcomes`, same order)."""
    labels = [task_label(q) for q in questions]
    designs, tables = {}, {}
    for label in sorted(set(labels)):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        mean = reward(outcomes.correct[rows], outcomes.cost[rows]).mean(0)  # [M]
        acc, cost = outcomes.correct[rows].mean(0), outcomes.cost[rows].mean(0)
        models = list(outcomes.models)
        ranked = sorted(models, key=lambda m: (-mean[models.index(m)], cost[models.index(m)], m))
        by_acc = sorted(models, key=lambda m: (-acc[models.index(m)], cost[models.index(m)], m))
        by_cost = sorted(models, key=lambda m: (-cost[models.index(m)], m))
        cands = candidate_designs(roleset, ranked, by_acc, by_cost, top)
        qs = [questions[i] for i in rows][:limit]
        jobs = [Job(design=d, question=q, task=task, roleset=roleset) for d in cands for q in qs]
        traces = await run_many(jobs, client, max_in_flight=max_in_flight)
        table = []
        for j, d in enumerate(cands):
            ts = traces[j * len(qs):(j + 1) * len(qs)]
            correct = np.array([bool(t.correct) and not t.failed for t in ts], dtype=float)
            spent = np.array([t.cost_usd for t in ts], dtype=float)
            table.append({"design": d.summary(), "accuracy": float(correct.mean()), "cost_usd": float(spent.mean()),
                          "reward": float(np.mean(reward(correct, spent)))})
        best = min(range(len(cands)), key=lambda j: (-table[j]["reward"], table[j]["cost_usd"], table[j]["design"]))
        designs[label], tables[label] = cands[best], sorted(table, key=lambda r: -r["reward"])
    return DesignsPerTask(designs, single_design(roleset, best_single), tables)
