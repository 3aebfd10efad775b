"""One supernode (role) of a Design: k proposers in parallel, then one synthesizer reading them.

The plurality synthesizer asks until the vote is settled (`ask_until_settled`): a proposer list
is the vote's tie order (ties go to the earliest proposer), and the proposers are asked from the
*last* one up — in batches, each the fewest that could settle the vote if they all agreed with
the leader — stopping as soon as the unasked ones can no longer change the winner. The answer is
always the full vote's answer; the strongest proposers, which decide ties and come first, are
asked only when the others disagree. With a cheap-first ask order that is a cascade: "the two
cheap models agree, else the third decides" is the plurality of [strong, cheap, cheap].

Also the request builder every caller of the LLM client in `mas/` and `eval/` shares, so that
every request carries the call metadata the offline backends need: `task`, `question_id`,
`role`, `position`, `context_answers` (the extracted answers of the texts quoted in the prompt,
in order; None for unparseable ones).

Sample indices: a design run with sample index s gives its calls index `s * MAX_REPEATS + o`,
where o counts earlier proposers of the same model in the same mixture — so a mixture that
repeats a model gets distinct samples, and s = 0 with no repeats gives index 0 (the real answer
in replay).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hieramas_gnn.llm.types import LLMCallError, LLMRecord, LLMRequest
from hieramas_gnn.mas.roles import RoleSet
from hieramas_gnn.mas.trace import CallTrace, NodeTrace
from hieramas_gnn.tasks.base import Question, Task, instruction_for

MAX_REPEATS = 16
MEMO_SIZE = 1 << 16
"""Most (task, question, reply) entries `AnswerMemo` keeps before it starts over."""
POSITION_RANK = {"proposer": 0, "single": 0, "debate": 0, "synthesizer": 1, "aggregator": 1,
                 "decision": 2}


class AnswerMemo:
    """Extracted answers and grades of reply texts, remembered in this process.

    Every call of a replayed rollout returns a cached reply text, and the same texts come back
    across episodes and steps (a model's reply to a question is one text per sample), so a
    task's `extract` / `score` of one (question, reply) would otherwise run again for every
    episode that reads it: the executor extracts each proposal, grades each role's and the
    decision's text, and quotes upstream answers. Both are pure functions of (question, reply);
    entries are keyed by the task object (a weak reference, so a collected task's entries never
    answer for another), the question and the text. Grades of code tasks (tests run in a
    sandbox, under a clock) are not remembered. At `MEMO_SIZE` entries the memo starts over.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._entries: dict[tuple, tuple[Any, Any]] = {}

    def clear(self) -> None:
        self._entries.clear()

    def _get(self, kind: str, task: Any, question: Question, text: str, compute: Callable[[], Any]) -> Any:
        try:
            key = (kind, id(task), question, text)
            hit = self._entries.get(key)
        except TypeError:  # an unhashable question (e.g. a list as gold): not remembered
            return compute()
        if hit is not None and hit[0]() is task:
            return hit[1]
        value = compute()
        try:
            ref = weakref.ref(task)
        except TypeError:  # a task that cannot be weakly referenced: not remembered
            return value
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (ref, value)
        return value

    def extract(self, task: Any, question: Question, text: str) -> str | None:
        """`task.extract(text, question)`, remembered."""
        return self._get("x", task, question, text, lambda: task.extract(text, question))

    def score(self, task: Any, question: Question, text: str) -> Any:
        """`task.score(text, question)`, remembered (callers keep code tasks out)."""
        return self._get("s", task, question, text, lambda: task.score(text, question))


ANSWERS = AnswerMemo()
"""The process's memo of extracted answers and grades (`AnswerMemo`)."""


def build_request(model: str, system: str, user: str, *, task: Task, question: Question,
                  role: str, position: str, context_answers: list[str | None],
                  prompt_version: str, sample_index: int = 0, temperature: float = 0.0,
                  max_tokens: int | None = None) -> LLMRequest:
    """A chat request with the standard call metadata."""
    return LLMRequest(
        model=model,
        messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
        temperature=temperature, max_tokens=max_tokens, sample_index=sample_index,
        prompt_version=prompt_version,
        metadata={"task": task.name, "question_id": question.id, "role": role,
                  "position": position, "context_answers": list(context_answers)})


def plurality(answers: Sequence[str | None]) -> str | None:
    """Most common non-None answer; ties go to the tied answer that appears first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def voted(texts: Sequence[str], answers: Sequence[str | None]) -> str:
    """The text of the first proposal carrying the plurality answer (the first text when none parsed)."""
    win = plurality(answers)
    return next((t for t, a in zip(texts, answers) if a is not None and a == win), texts[0])


def more_to_ask(answers: Sequence[str | None], k: int) -> int:
    """How many more proposers a plurality vote of `k` must ask, given the answers of its last
    `len(answers)` proposers (in proposer order; None: unparsed, no vote): 0 once no answers of
    the unasked ones could change the winner, else the fewest that could settle it were they all
    to agree with the leader. The unasked proposers come earlier, so they win every tie: the
    leader is safe only when it leads every rival by more than the unasked count."""
    unasked = k - len(answers)
    if unasked <= 0:
        return 0
    counts = Counter(a for a in answers if a is not None)
    lead = plurality(answers)
    ahead = counts[lead] if lead is not None else 0
    rival = max((c for a, c in counts.items() if a != lead), default=0)
    if rival + unasked < ahead:
        return 0
    return min(unasked, (rival + unasked - ahead) // 2 + 1)  # least n: rival + (unasked - n) < ahead + n


async def ask_until_settled(ask: Callable[[int], Awaitable[LLMRecord]], k: int,
                            extract: Callable[[str], str | None]
                            ) -> tuple[list[LLMRecord | None], list[str | None], float]:
    """Run a plurality vote of `k` proposers asking only as many as settle it (module docstring):
    `ask(j)` makes proposer j's call. Returns the records and their extracted answers in proposer
    order (None for a proposer not asked) and the critical-path latency (the sum over rounds of
    each round's slowest call)."""
    records: list[LLMRecord | None] = [None] * k
    answers: list[str | None] = []  # of the asked suffix, in proposer order
    latency = 0.0
    while n := more_to_ask(answers, k):
        start = k - len(answers) - n
        batch = await call_all([ask(j) for j in range(start, start + n)])
        records[start:start + n] = batch
        answers = [extract(r.text) for r in batch] + answers
        latency += max(r.latency_ms for r in batch)
    return records, [None] * (k - len(answers)) + answers, latency


def votes(records: Sequence[LLMRecord | None], answers: Sequence[str | None]) -> tuple[list, list, str]:
    """(proposals, answers, the voted text) of a settled vote (`ask_until_settled`'s records and
    answers); an unasked proposer's text and answer are None."""
    asked = [(r.text, a) for r, a in zip(records, answers) if r is not None]
    return ([None if r is None else r.text for r in records], list(answers),
            voted([t for t, _ in asked], [a for _, a in asked]))


def quote(texts: list[tuple[str, str]]) -> str:
    """Upstream texts as headed blocks: [(heading, text)] -> '### heading\\ntext' joined."""
    return "\n\n".join(f"### {head}\n{text.strip()}" for head, text in texts)


@dataclass
class Episode:
    """What every call of one episode shares; collects the completed calls as they land.

    `calls` holds (order key, CallTrace): the key sorts calls deterministically at the end
    (node index, position rank, slot), whatever order they completed in.
    """

    task: Task
    question: Question
    client: Any
    roleset: RoleSet
    sample_index: int = 0
    temperature: float = 0.0
    max_tokens: int | None = None
    calls: list[tuple[tuple[int, int, int], CallTrace]] = field(default_factory=list)
    failure: str | None = None

    def lookup(self, request: LLMRequest, order: tuple[int, int, int]) -> tuple[str | None, LLMRecord | None]:
        """(cache key, record) when the client can answer from its cache without a call (a client
        with `lookup`, e.g. `LLMClient.lookup`); a record is recorded as `call` records it."""
        lookup = getattr(self.client, "lookup", None)
        key, record = (None, None) if lookup is None else lookup(request)
        if record is not None:
            self.calls.append((order, CallTrace.of(request, record)))
        return key, record

    async def call_once(self, request: LLMRequest, order: tuple[int, int, int]) -> LLMRecord:
        """`call`, answered at once when the client has the record cached (`lookup`)."""
        key, record = self.lookup(request, order)
        return record if record is not None else await self.call(request, order, key=key)

    async def call_many(self, requests: Sequence[LLMRequest], orders: Sequence[tuple[int, int, int]]
                        ) -> list[LLMRecord]:
        """`call` of every request, as `call_all` runs them (in order): the cached ones are answered
        at once, the others awaited together (a cache hit needs no task on the event loop)."""
        found = [self.lookup(r, o) for r, o in zip(requests, orders)]
        records = [record for _, record in found]
        missing = [i for i, r in enumerate(records) if r is None]
        if missing:
            done = await call_all([self.call(requests[i], orders[i], key=found[i][0]) for i in missing])
            for i, record in zip(missing, done):
                records[i] = record
        return records  # type: ignore[return-value]

    async def call(self, request: LLMRequest, order: tuple[int, int, int], *, key: str | None = None) -> LLMRecord:
        """Run one call; record it the moment it completes. LLMCallError propagates, and the
        first one is kept as the episode's failure reason (role, position, model, error).
        `key`: the request's cache key from `lookup` (passed on to the client)."""
        try:
            record = await (self.client.complete(request) if key is None else self.client.complete(request, key=key))
        except LLMCallError as exc:
            if self.failure is None:
                meta = request.metadata
                self.failure = (f"{meta.get('role')}/{meta.get('position')} call to "
                                f"{request.model} failed: {type(exc).__name__}: {exc}")
            raise
        self.calls.append((order, CallTrace.of(request, record)))
        return record

    def request(self, model: str, system: str, user: str, *, role: str, position: str,
                context_answers: list[str | None], sample_index: int | None = None) -> LLMRequest:
        return build_request(
            model, system, user, task=self.task, question=self.question, role=role,
            position=position, context_answers=context_answers,
            prompt_version=self.roleset.prompt_version,
            sample_index=self.sample_index * MAX_REPEATS if sample_index is None else sample_index,
            temperature=self.temperature, max_tokens=self.max_tokens)

    def instruction(self) -> str:
        """The answer format of this question's prompts (a mixed task: its component's)."""
        return instruction_for(self.task, self.question)

    def extract(self, text: str) -> str | None:
        """The task's extracted answer of `text` (remembered: `AnswerMemo`)."""
        return ANSWERS.extract(self.task, self.question, text)

    async def grade(self, text: str) -> tuple[str | None, bool]:
        """(extracted answer, correct); code tasks run their tests off the event loop, other
        grades are remembered (`AnswerMemo`)."""
        part = self.task.component(self.question) if hasattr(self.task, "component") else self.task  # a mixed task
        if getattr(part, "answer_kind", "") == "code":
            score = await asyncio.to_thread(self.task.score, text, self.question)
        else:
            score = ANSWERS.score(self.task, self.question, text)
        return score.extracted, bool(score.correct)


@dataclass
class NodeResult:
    """A finished supernode: its trace and its critical-path finish time (sum of call latencies)."""

    node: NodeTrace
    finish_ms: float


async def call_all(calls: Sequence[Any]) -> list[LLMRecord]:
    """Await the calls together; every one finishes (and is recorded: it was paid for) before the
    first LLMCallError is raised."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return results


async def run_supernode(ep: Episode, index: int, role_name: str, mixture: Any,
                        upstream: list[NodeResult]) -> NodeResult:
    """Proposers (concurrently) then, when k > 1, the synthesizer (or, for the plurality
    synthesizer, no call: the proposers asked until the vote is settled, and the first of their
    proposals with the winning answer); then parse and grade.

    `upstream` are the finished predecessor nodes, quoted in the proposers' prompts.
    Raises LLMCallError when a call fails (after the sibling calls in flight have finished).
    """
    role = ep.roleset.get(role_name)
    context = quote([(u.node.role, u.node.text or "") for u in upstream])
    header = ep.roleset.templates["upstream_header"] if upstream else ""
    user = ep.roleset.render("proposer_user", question=ep.question.text,
                             context=f"\n{header}\n\n{context}\n" if upstream else "",
                             instruction=ep.instruction())
    ctx_answers = [u.node.answer for u in upstream]
    seen: dict[str, int] = {}
    requests = []
    for model in mixture.proposers:
        occ = seen[model] = seen.get(model, -1) + 1
        requests.append(ep.request(model, role.system, user, role=role_name, position="proposer",
                                   context_answers=ctx_answers,
                                   sample_index=ep.sample_index * MAX_REPEATS + occ))
    start = max((u.finish_ms for u in upstream), default=0.0)
    if mixture.plurality:
        records, answers, took = await ask_until_settled(
            lambda j: ep.call(requests[j], (index, 0, j)), mixture.k, ep.extract)
        proposals, proposal_answers, text = votes(records, answers)
        finish = start + took
    else:
        results = await ep.call_many(requests, [(index, 0, j) for j in range(len(requests))])
        finish = start + max(r.latency_ms for r in results)
        proposals = [r.text for r in results]
        proposal_answers = [ep.extract(t) for t in proposals]
        text = proposals[0]
    if mixture.k > 1 and not mixture.plurality:
        synth_user = ep.roleset.render(
            "synthesizer_user", question=ep.question.text,
            proposals=quote([(f"Proposal {j + 1}", t) for j, t in enumerate(proposals)]),
            instruction=ep.instruction())
        req = ep.request(mixture.synthesizer, role.system, synth_user, role=role_name,
                         position="synthesizer", context_answers=proposal_answers,
                         sample_index=ep.sample_index * MAX_REPEATS)
        record = await ep.call_once(req, (index, 1, 0))
        text, finish = record.text, finish + record.latency_ms
    node = NodeTrace(index=index, role=role_name, gradable=role.gradable, text=text,
                     proposals=proposals, proposal_answers=proposal_answers)
    if role.gradable:
        node.answer, node.correct = await ep.grade(text)
    else:
        node.answer = ep.extract(text)
    return NodeResult(node, finish)


def now_ms() -> float:
    return time.perf_counter() * 1000.0
