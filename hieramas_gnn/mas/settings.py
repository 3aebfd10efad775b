"""Settings of the candidate-DAG generator (`mas.topologies.random_dag`), defined once: the run
config's `topology` section, the topology classifier's training and a bundle's design choice all
extend `CandidateDAGs`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

MAX_CANDIDATES = 1024
"""Most candidate DAGs per query (K): more would allocate without bound from one config value."""


@dataclass(kw_only=True)
class CandidateDAGs:
    """How many candidate DAGs are drawn per query, and how dense they are (keyword arguments only)."""

    n_candidates: int = 8
    """K: candidate DAGs per query (classifier training and choice)."""
    density_min: float = 0.0
    """Lower end of a candidate's extra-edge density (0: spanning tree only)."""
    density_max: float = 1.0
    """Upper end of a candidate's extra-edge density (1: every forward pair of the order)."""

    def check(self) -> Iterator[tuple[str, str]]:
        """(field, message) for every invalid value."""
        if not 1 <= self.n_candidates <= MAX_CANDIDATES:
            yield "n_candidates", f"must be in 1..{MAX_CANDIDATES}, got {self.n_candidates}"
        if not 0.0 <= self.density_min <= self.density_max <= 1.0:
            yield "density_min", "density_min/density_max must satisfy 0 <= min <= max <= 1"
