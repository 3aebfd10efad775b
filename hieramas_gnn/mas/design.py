"""A Design: role supernodes, each a mixture of LLMs (or skipped), a DAG between them, a decision model.

Models are referred to by their pool name. Roles are indexed by position in `roles`; edges are
(src, dst) pairs of role indices. This is the object the policy samples and the executor runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mixture:
    """Inside one supernode: `proposers` answer in parallel, `synthesizer` writes the output.

    With a single proposer the synthesizer step is skipped (the proposal is the output).
    """

    proposers: tuple[str, ...]
    synthesizer: str

    @property
    def k(self) -> int:
        return len(self.proposers)


@dataclass(frozen=True)
class Design:
    """roles: role names in order; mixtures[i] is role i's Mixture or None (skipped);
    edges: DAG between role indices; decision: model that reads the sinks and answers."""

    roles: tuple[str, ...]
    mixtures: tuple[Mixture | None, ...]
    edges: tuple[tuple[int, int], ...]
    decision: str
