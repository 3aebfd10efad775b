"""A planted topology rule for stage-2 and comparator tests: a design is correct exactly when it
contains the edge `PLANTED`, and its cost grows with its edge count."""

from __future__ import annotations

from dataclasses import dataclass

from hieramas_gnn.tasks.base import Question

PLANTED = (0, 2)


@dataclass
class FakeTrace:
    """The fields of a Trace that the trainers and `summarize` read."""

    correct: bool
    cost_usd: float
    tokens: int = 10
    latency_ms: float = 1.0
    calls: int = 1
    failed: bool = False


class PlantedRunner:
    """A runner (`run(jobs) -> traces`, `rollouts`) that grades designs by the planted edge."""

    def __init__(self, cost_per_edge: float = 0.001):
        self.rollouts = 0
        self.cost_per_edge = cost_per_edge

    def run(self, jobs):
        self.rollouts += len(jobs)
        return [FakeTrace(correct=PLANTED in d.edges, cost_usd=self.cost_per_edge * len(d.edges)) for d, _ in jobs]


def questions(n: int, id_prefix: str = "q") -> list[Question]:
    return [Question(id=f"{id_prefix}{i}", task="synthetic", text=f"q{i}", gold="1") for i in range(n)]
