"""Settings of the policy model, defined beside it (the run config composes them as
`policy.arch`); importing this module loads no torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from dataclasses import asdict
from typing import Any, Literal

from hieramas_gnn.config_io import Problems, non_negative
from hieramas_gnn.mas.settings import CandidateDAGs

CONVS = ("gat", "gatv2", "gcn")
ARCH_LIMITS = {"hidden": 4096, "layers": 32, "heads": 64, "k_proposers": 256, "proposer_slots": 256, "score_layers": 32}
"""Upper bounds of the architecture (a bundle or config past them would allocate gigabytes)."""


@dataclass
class ArchConfig:
    """Architecture of `HieraPolicy` (the run config's `policy.arch` section)."""

    hidden: int = 64
    """Hidden width H (divisible by `heads` for GAT/GATv2)."""
    layers: int = 2
    """Message-passing layers in the shared encoder."""
    conv: Literal["gat", "gatv2", "gcn"] = "gatv2"
    """Convolution: `gat`, `gatv2` or `gcn`."""
    dropout: float = 0.0
    """Dropout after each conv layer and in the head MLPs."""
    heads: int = 2
    """Attention heads (GAT/GATv2 only)."""
    k_proposers: int = 2
    """Proposers sampled per supernode (capped at M)."""
    allow_skip: bool = True
    """Whether the sampler may skip a role (the skip head is always built)."""
    proposer_slots: int = 0
    """0: every active role has exactly `k_proposers` proposers. > 0: up to this many, the number
    learned (HieraMAS worker slots: after the first proposer each slot is a pool model or "stop",
    which leaves the rest empty); with `allow_skip` this reaches "one role, one proposer"."""
    stop_per_slot: bool = False
    """With `proposer_slots`: a stop logit per slot position instead of one per role. One shared
    stop probability p makes the proposer count geometric, whose step-by-step greedy decoding
    reaches only small counts or all S (cloning "4 of 7 models" gives p = 1/4: greedy never stops
    after the 4th); per-slot logits can make any count the greedy one. Needed for plurality votes
    of many models; off by default so older checkpoints load."""
    plurality: bool = False
    """Whether a supernode's synthesizer may be `plurality` (no call: the first proposal with the
    most common answer is the output; the proposers are asked from the last one up until the
    unasked ones can no longer change the winner), one more choice beside the M models. With `allow_skip`,
    `decision_inputs: all` and `proposer_slots` >= 3, one role can then hold a plurality vote of
    any subset of the pool (the `vote` baseline included), however few roles the task has."""
    decision_inputs: Literal["sinks", "all"] = "sinks"
    """What the decision reads in the designs the policy builds: `sinks`, or `all` active roles
    (a unanimous answer is then taken without a decision call; see `mas/design.py`)."""
    score_layers: int = 1
    """Extra DAG-only message-passing layers inside the graph-score head."""

    def check(self) -> Problems:
        yield from non_negative("proposer_slots", self.proposer_slots)
        if self.decision_inputs not in ("sinks", "all"):
            yield "decision_inputs", f"must be sinks or all, got {self.decision_inputs!r}"
        if self.conv not in CONVS:
            yield "conv", f"must be one of {', '.join(CONVS)}, got {self.conv!r}"
        for name in ("hidden", "k_proposers", "heads"):
            if getattr(self, name) < 1:
                yield name, f"must be >= 1, got {getattr(self, name)}"
        for name, most in ARCH_LIMITS.items():
            if getattr(self, name) > most:
                yield name, f"must be at most {most}, got {getattr(self, name)}"
        if self.conv != "gcn" and self.heads >= 1 and self.hidden % self.heads:
            yield "hidden", f"({self.hidden}) must be divisible by heads ({self.heads})"
        for name in ("layers", "score_layers"):
            yield from non_negative(name, getattr(self, name))
        if not 0.0 <= self.dropout < 1.0:
            yield "dropout", f"must be in [0, 1), got {self.dropout}"

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (for code that builds it directly)."""
        for name, message in self.check():
            raise ValueError(f"ArchConfig.{name} {message}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


ROUTES = ("classifier", "edges", "random")
TOPOLOGIES = ("random", "parallel")


@dataclass(kw_only=True)
class ChoiceSettings(CandidateDAGs):
    """How a bundle chooses designs (recorded in its manifest); the candidate DAGs' settings
    (`n_candidates`, `density_min`, `density_max`, used by the `classifier` and `random` routes)
    are `mas.settings.CandidateDAGs`. Keyword arguments only."""

    route: str
    """`classifier`, `edges` or `random` (see the module docstring)."""
    decision: str
    """The decision model (reads the sinks, gives the final answer)."""
    seed: int = 0
    """Seed of the per-query candidate generator."""
    topologies: str = "random"
    """DAG family of the candidates: `random` or `parallel` (the empty DAG only)."""

    def __post_init__(self) -> None:
        if self.topologies not in TOPOLOGIES:
            raise ValueError(f"choice topologies must be one of {TOPOLOGIES}, got {self.topologies!r}")
        if self.route not in ROUTES:
            raise ValueError(f"choice route must be one of {ROUTES}, got {self.route!r}")
        for name in ("n_candidates", "seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"choice {name} must be an integer, got {getattr(self, name)!r}")
        for name in ("density_min", "density_max"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int | float):
                raise ValueError(f"choice {name} must be a number, got {getattr(self, name)!r}")
        for name, message in self.check():
            raise ValueError(f"choice {name} {message}")
        if not isinstance(self.decision, str) or not self.decision:
            raise ValueError(f"choice decision must name the decision model, got {self.decision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChoiceSettings:
        return cls(**data)
