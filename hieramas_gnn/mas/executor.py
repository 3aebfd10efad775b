"""The dataflow executor: runs a Design on one query (`run_design`) or many (`run_many`).

Scheduling is dataflow, not level by level: every active supernode is an asyncio task that
awaits its predecessors' tasks, so it starts the moment its *last* predecessor finishes. The
decision task awaits the roles it reads (`Design.decision_reads()`: the sinks, or with
`decision_inputs="all"` every active role — and then a unanimous answer is taken directly,
without a decision call). A global bound on calls in flight is a semaphore wrapped around
the client (`BoundedClient`); `run_many` shares one bound across all its queries and keeps up to
`max_queries` queries active, admitting a new one as soon as one finishes.

Failures: an `LLMCallError` in any call marks the episode failed with a reason naming the role,
position and model; nodes downstream of the failure never start; sibling calls already in flight
finish and are recorded (they were paid for). Any other exception is a bug and propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hieramas_gnn.llm.types import LLMCallError, LLMRecord, LLMRequest
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.roles import RoleSet
from hieramas_gnn.mas.single import run_lone
from hieramas_gnn.mas.supernode import Episode, NodeResult, now_ms, quote, run_supernode
from hieramas_gnn.mas.trace import NodeTrace, Trace, component_of
from hieramas_gnn.tasks.base import Question, Task


class BoundedClient:
    """Wraps a client so that at most `max_in_flight` calls run at once (shared by all users)."""

    def __init__(self, client: Any, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.client = client
        self.max_in_flight = max_in_flight
        self._sem = asyncio.Semaphore(max_in_flight)
        self._lookup = getattr(client, "lookup", None)

    def lookup(self, request: LLMRequest) -> tuple[str | None, LLMRecord | None]:
        """The wrapped client's `lookup` (`LLMClient.lookup`: no call, so no slot), or (None, None)."""
        return (None, None) if self._lookup is None else self._lookup(request)

    async def complete(self, request: LLMRequest, **kwargs: Any) -> LLMRecord:
        async with self._sem:
            return await self.client.complete(request, **kwargs)


@dataclass(frozen=True)
class Job:
    """One design on one query (what `run_many` runs; a plain `async (client) -> Trace`
    callable works too, which is how baselines that are not Designs are run)."""

    design: Design
    question: Question
    task: Task
    roleset: RoleSet
    sample_index: int = 0
    temperature: float = 0.0

    async def __call__(self, client: Any) -> Trace:
        return await run_design(self.design, self.question, self.task, client, self.roleset,
                                self.sample_index, temperature=self.temperature)


async def run_design(design: Design, question: Question, task: Task, client: Any,
                     roleset: RoleSet, sample_index: int = 0, *, max_in_flight: int | None = None,
                     temperature: float = 0.0, max_tokens: int | None = None) -> Trace:
    """Execute `design` on `question`; return its Trace (failed, with a reason, if a call failed)."""
    design.validate(roleset)
    if max_in_flight is not None:
        client = BoundedClient(client, max_in_flight)
    ep = Episode(task, question, client, roleset, sample_index, temperature, max_tokens)
    trace = Trace(task=task.name, question_id=question.id, method="design", design=design.to_dict(),
                  component=component_of(task, question))
    preds = design.predecessors()
    start = now_ms()
    tasks: dict[int, asyncio.Task] = {}

    lone = design.lone()
    if lone is not None and not roleset.get(design.roles[lone]).gradable:
        lone = None  # a planner-like role alone keeps its own prompt (its output informs the decision)

    async def node(i: int) -> NodeResult:
        if i == lone:  # one model answering alone, or a plurality vote: plain single calls
            return await run_lone(ep, i, design.roles[i], design.mixtures[i])
        upstream = [await tasks[p] for p in preds[i]]
        return await run_supernode(ep, i, design.roles[i], design.mixtures[i], upstream)

    for i in design.topological_order():
        if i in preds:
            tasks[i] = asyncio.ensure_future(node(i))
    decision = asyncio.ensure_future(_decide(ep, design, [tasks[s] for s in design.decision_reads()],
                                             final=lone is not None))
    outcomes = await asyncio.gather(*tasks.values(), decision, return_exceptions=True)
    trace.wall_ms = now_ms() - start
    trace.calls = [c for _, c in sorted(ep.calls, key=lambda oc: oc[0])]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    bugs = [e for e in errors if not isinstance(e, LLMCallError)]
    if bugs:
        raise bugs[0]
    trace.nodes = _node_traces(design, roleset, tasks)
    if errors:
        trace.fail(ep.failure or str(errors[0]))
        return trace
    text, answer, correct, finish = outcomes[-1]
    trace.answer, trace.correct, trace.latency_ms = answer, correct, finish
    return trace


async def _decide(ep: Episode, design: Design, inputs: list[asyncio.Task], final: bool = False) -> tuple:
    """The decision call: reads the input roles' outputs (or the bare question when all roles are
    skipped). With `decision_inputs="all"`, unanimous inputs give the answer with no call; with
    `final` (a lone single-model design) the one input is the answer, parsed or not, exactly as the
    single model's own answer would be."""
    results: list[NodeResult] = [await s for s in inputs]
    if final or (design.decision_inputs == "all" and unanimous([r.node.answer for r in results])):
        text = results[0].node.text or ""
        answer, correct = await ep.grade(text)
        return text, answer, correct, max(r.finish_ms for r in results)
    context = quote([(r.node.role, r.node.text or "") for r in results])
    user = ep.roleset.render("decision_user", question=ep.question.text,
                             context=context, instruction=ep.instruction())
    req = ep.request(design.decision, ep.roleset.templates["decision_system"], user,
                     role="decision", position="decision",
                     context_answers=[r.node.answer for r in results])
    record = await ep.call_once(req, (design.n, 2, 0))
    answer, correct = await ep.grade(record.text)
    finish = max((r.finish_ms for r in results), default=0.0) + record.latency_ms
    return record.text, answer, correct, finish


def unanimous(answers: Sequence[str | None]) -> bool:
    """At least one answer, all parsed and all equal (the extracted, normalised forms)."""
    return bool(answers) and answers[0] is not None and all(a == answers[0] for a in answers)


def _node_traces(design: Design, roleset: RoleSet, tasks: dict[int, asyncio.Task]) -> list[NodeTrace]:
    """One NodeTrace per role: the finished ones, skipped ones, and ones a failure prevented."""
    out = []
    for i, name in enumerate(design.roles):
        gradable = roleset.get(name).gradable
        t = tasks.get(i)
        if t is None:
            out.append(NodeTrace(index=i, role=name, skipped=True, gradable=gradable))
        elif t.done() and not t.cancelled() and t.exception() is None:
            out.append(t.result().node)
        else:
            out.append(NodeTrace(index=i, role=name, gradable=gradable))
    return out


async def run_many(jobs: Sequence[Job | Callable[[Any], Awaitable[Trace]]], client: Any,
                   max_in_flight: int = 32, max_queries: int | None = None,
                   on_done: Callable[[Trace], None] | None = None) -> list[Trace]:
    """Run every job, at most `max_in_flight` calls at once over all of them.

    Up to `max_queries` jobs (default 2 * max_in_flight, so there are always calls ready to fill
    the bound) are active at any time, in job order; a new one starts the moment one finishes
    (that many worker tasks take the next job in turn: one task per active job, not per job).
    Returns the traces in job order; `on_done` is called as each finishes (progress bars).
    """
    bounded = BoundedClient(client, max_in_flight)
    out: list[Trace | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for i, job in queue:
            out[i] = await job(bounded)
            if on_done is not None:
                on_done(out[i])

    await asyncio.gather(*(worker() for _ in range(min(len(jobs), max_queries or 2 * max_in_flight))))
    return out  # type: ignore[return-value]
