"""Test and benchmark doubles for the MAS runtime: a scripted LLM client and a tiny task.

`FakeClient` has the client contract (`async complete(request) -> LLMRecord`), a fixed simulated
latency, scripted replies, injected failures, and instrumentation of calls in flight (time-
weighted average and peak) — what `bench/bench_executor.py` measures. `LetterTask` is a minimal
multiple-choice task ("Answer: X") so runtime tests do not depend on the real benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hieramas_gnn.llm.types import LLMCallError, LLMRecord, LLMRequest
from hieramas_gnn.tasks.base import Question, Score


@dataclass
class FakeClient:
    """Scripted client. `reply(request) -> str` writes the text (default: 'Answer: A');
    `fail(request) -> bool` makes a call raise LLMCallError; each call sleeps `latency_s`.

    Costs are deterministic per request: `cost_per_token * tokens`, tokens from text lengths.
    """

    reply: Callable[[LLMRequest], str] | None = None
    fail: Callable[[LLMRequest], bool] | None = None
    latency_s: float = 0.0
    cost_per_token: float = 1e-6
    requests: list[LLMRequest] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    _area: float = 0.0
    _t_first: float | None = None
    _t_last: float = 0.0

    def _tick(self, delta: int) -> None:
        now = time.perf_counter()
        if self._t_first is None:
            self._t_first = now
        else:
            self._area += self.in_flight * (now - self._t_last)
        self._t_last = now
        self.in_flight += delta
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    @property
    def mean_in_flight(self) -> float:
        """Time-weighted mean of calls in flight between the first call start and last call end."""
        span = self._t_last - (self._t_first or self._t_last)
        return self._area / span if span > 0 else 0.0

    async def complete(self, request: LLMRequest) -> LLMRecord:
        self.requests.append(request)
        self._tick(+1)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if self.fail is not None and self.fail(request):
                raise LLMCallError(f"injected failure for {request.model}")
            text = self.reply(request) if self.reply else "Answer: A"
        finally:
            self._tick(-1)
        prompt_tokens = sum(len(m["content"]) for m in request.messages) // 4 + 1
        completion_tokens = len(text) // 4 + 1
        key = hashlib.sha256(repr((request.model, request.messages, request.sample_index)).encode()).hexdigest()
        return LLMRecord(key=key, model=request.model, text=text, prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens,
                         cost_usd=self.cost_per_token * (prompt_tokens + completion_tokens),
                         latency_ms=self.latency_s * 1000.0, cache_hit=False, created_at=time.time())


_ANSWER = re.compile(r"Answer:\s*([A-D])\b")


@dataclass
class LetterTask:
    """A tiny multiple-choice task: the answer is the last 'Answer: X' (X in A-D) of a reply."""

    name: str = "letters"
    family: str = "mmlu"
    answer_kind: str = "choice"

    def questions(self, n: int, gold: str = "A") -> list[Question]:
        return [Question(id=f"letters/{i}", task=self.name, text=f"Question {i}? (A) a (B) b (C) c (D) d",
                         gold=gold, meta={"domain": "letters"}) for i in range(n)]

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        return self.questions(limit or 10)

    def instruction(self) -> str:
        return "End with 'Answer: X' where X is one of A, B, C, D."

    def extract(self, response: str, question: Question) -> str | None:
        found = _ANSWER.findall(response or "")
        return found[-1] if found else None

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return extracted is not None and extracted == question.gold

    def score(self, response: str, question: Question) -> Score:
        extracted = self.extract(response, question)
        return Score(self.is_correct(extracted, question), extracted)

    def render_answer(self, answer: str, question: Question) -> str:
        return f"Answer: {answer}"
