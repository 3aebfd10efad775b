"""Trace: everything one episode (one query through one design or baseline) did and cost.

`calls` holds one `CallTrace` per LLM call that completed (model, role, position, tokens, cost,
latency, cache hit); `nodes` one `NodeTrace` per role of the design (text, parsed answer,
`correct` — None when the role is not gradable or was skipped); then the final answer and grade.

Totals are derived, never counted on the side: `cost_usd` and `tokens` are the sums over `calls`
(properties, so they cannot drift). `latency_ms` is the episode's critical-path latency computed
from the per-call latencies by whoever built the trace (what a user waits with unlimited
parallelism), `wall_ms` the measured wall-clock time of this run.

A failed episode (`failed=True`) says why in `failure_reason` (secrets redacted); its `correct` is None, never
False: failures are masked out of rewards and accuracies, not scored 0. The calls that did
complete before the failure stay in `calls` (they were paid for).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hieramas_gnn.llm.types import LLMRecord, LLMRequest
from hieramas_gnn.redact import redact


@dataclass(frozen=True)
class CallTrace:
    """One completed LLM call."""

    model: str
    role: str
    position: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    cache_hit: bool
    sample_index: int = 0
    key: str = ""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, request: LLMRequest, record: LLMRecord) -> CallTrace:
        meta = request.metadata
        return cls(model=request.model, role=str(meta.get("role", "")),
                   position=str(meta.get("position", "")), prompt_tokens=record.prompt_tokens,
                   completion_tokens=record.completion_tokens, cost_usd=record.cost_usd,
                   latency_ms=record.latency_ms, cache_hit=record.cache_hit,
                   sample_index=request.sample_index, key=record.key)


@dataclass
class NodeTrace:
    """One role of a design: its output `text`, parsed `answer`, and grade.

    correct: True/False for a gradable role that ran; None when not gradable or skipped.
    proposals: the proposers' texts (a single entry when k = 1, then equal to `text`); None for
    a proposer a plurality vote did not need to ask (its answer in `proposal_answers` is None too).
    """

    index: int
    role: str
    skipped: bool = False
    gradable: bool = True
    text: str | None = None
    answer: str | None = None
    correct: bool | None = None
    proposals: list[str | None] = field(default_factory=list)
    proposal_answers: list[str | None] = field(default_factory=list)


def component_of(task: Any, question: Any) -> str | None:
    """The component a question of a mixed task belongs to (`tasks/mix.py`); None otherwise."""
    return question.meta.get("component") if hasattr(task, "component_names") else None


@dataclass
class Trace:
    """One episode. `method` names what ran (`design`, `single:<model>`, `moa`, ...);
    `component`: the question's component when the task is a mixed one (rows then carry
    `by_component` and `accuracy_task_mean`)."""

    task: str
    question_id: str
    method: str = "design"
    design: dict[str, Any] | None = None
    calls: list[CallTrace] = field(default_factory=list)
    nodes: list[NodeTrace] = field(default_factory=list)
    answer: str | None = None
    correct: bool | None = None
    failed: bool = False
    failure_reason: str | None = None
    latency_ms: float = 0.0
    wall_ms: float = 0.0
    component: str | None = None

    @property
    def cost_usd(self) -> float:
        return float(sum(c.cost_usd for c in self.calls))

    @property
    def tokens(self) -> int:
        return int(sum(c.tokens for c in self.calls))

    @property
    def n_calls(self) -> int:
        return len(self.calls)

    @property
    def cache_hits(self) -> int:
        return sum(1 for c in self.calls if c.cache_hit)

    def fail(self, reason: str) -> None:
        """Mark the episode failed (never graded); the reason is redacted (a 401 body may echo a key)."""
        self.failed, self.failure_reason, self.correct = True, redact(reason), None

    def to_dict(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)` plus the totals: the same dict (same keys, order, values and
        fresh containers), written out field by field (asdict deep-copies through the generic path)."""
        if type(self) is not Trace:  # a subclass may add fields
            return asdict(self) | {"cost_usd": self.cost_usd, "tokens": self.tokens, "n_calls": self.n_calls}
        out = {"task": _plain(self.task), "question_id": _plain(self.question_id), "method": _plain(self.method),
               "design": _plain(self.design),
               "calls": [_call_dict(c) for c in self.calls] if type(self.calls) is list else _plain(self.calls),
               "nodes": [_node_dict(n) for n in self.nodes] if type(self.nodes) is list else _plain(self.nodes),
               "answer": _plain(self.answer), "correct": _plain(self.correct), "failed": _plain(self.failed),
               "failure_reason": _plain(self.failure_reason), "latency_ms": _plain(self.latency_ms),
               "wall_ms": _plain(self.wall_ms), "component": _plain(self.component)}
        out.update(cost_usd=self.cost_usd, tokens=self.tokens, n_calls=self.n_calls)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        data = {k: v for k, v in data.items() if k not in ("cost_usd", "tokens", "n_calls")}
        data["calls"] = [CallTrace(**c) for c in data.get("calls", [])]
        data["nodes"] = [NodeTrace(**n) for n in data.get("nodes", [])]
        return cls(**data)


_ATOMS = (str, int, float, bool, type(None))


def _plain(obj: Any) -> Any:
    """What `dataclasses.asdict` makes of a field value: JSON-like values copied container by
    container (atoms as they are, as `copy.deepcopy` returns them), anything else through asdict's
    own path (`_AsDict`)."""
    if type(obj) in _ATOMS:
        return obj
    if type(obj) is list:
        return [_plain(v) for v in obj]
    if type(obj) is dict:
        return {_plain(k): _plain(v) for k, v in obj.items()}
    return asdict(_AsDict(obj))["value"]


@dataclass
class _AsDict:
    """A one-field holder so that `asdict` converts a value of any other type as it would a field."""

    value: Any


def _call_dict(c: Any) -> Any:
    if type(c) is not CallTrace:
        return _plain(c)
    return {"model": _plain(c.model), "role": _plain(c.role), "position": _plain(c.position),
            "prompt_tokens": _plain(c.prompt_tokens), "completion_tokens": _plain(c.completion_tokens),
            "cost_usd": _plain(c.cost_usd), "latency_ms": _plain(c.latency_ms), "cache_hit": _plain(c.cache_hit),
            "sample_index": _plain(c.sample_index), "key": _plain(c.key)}


def _node_dict(n: Any) -> Any:
    if type(n) is not NodeTrace:
        return _plain(n)
    return {"index": _plain(n.index), "role": _plain(n.role), "skipped": _plain(n.skipped),
            "gradable": _plain(n.gradable), "text": _plain(n.text), "answer": _plain(n.answer),
            "correct": _plain(n.correct), "proposals": _plain(n.proposals),
            "proposal_answers": _plain(n.proposal_answers)}
