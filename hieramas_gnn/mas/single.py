"""The degenerate MAS: one model answers alone. Used by the `single:<m>` baseline and by
`best_single_model`, which picks a pool's best model on training + validation questions (the
default decision model of the learned policy and the fair anchor of the baselines — never "the
pool's first model").

`episode_job(task, roleset, question, method, body, temperature)` wraps an episode body
(`async (Episode) -> (text, answer, correct, latency_ms)`) into a runner job
(`async (client) -> Trace`); `ask_single(ep, model)` is the single-model body.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from hieramas_gnn.llm.types import LLMCallError
from hieramas_gnn.mas.supernode import MAX_REPEATS, Episode, NodeResult, ask_until_settled, now_ms, votes
from hieramas_gnn.mas.trace import NodeTrace, Trace, component_of

Body = Callable[[Episode], Awaitable[tuple]]


def episode_job(task: Any, roleset: Any, question: Any, method: str, body: Body,
                temperature: float = 0.0, prepare: Callable[[Any], Awaitable[Any]] | None = None
                ) -> Callable[[Any], Awaitable[Trace]]:
    """A runner job that runs `body` in a fresh Episode and returns its Trace (a failed call
    marks the trace failed, never wrong). `prepare(client)` runs first, outside the episode's
    timing and calls (e.g. the baselines' one-off anchor ranking)."""

    async def run(client: Any) -> Trace:
        if prepare is not None:
            await prepare(client)
        ep = Episode(task, question, client, roleset, 0, temperature)
        trace = Trace(task=task.name, question_id=question.id, method=method,
                      component=component_of(task, question))
        start = now_ms()
        try:
            _text, answer, correct, latency = await body(ep)
            trace.answer, trace.correct, trace.latency_ms = answer, correct, latency
        except LLMCallError as exc:
            trace.fail(ep.failure or str(exc))
        trace.wall_ms = now_ms() - start
        trace.calls = [c for _, c in sorted(ep.calls, key=lambda oc: oc[0])]
        return trace

    return run


async def ask(ep: Episode, model: str, template: str, slot: int, *, sample: int = 0,
              role: str = "single", position: str = "single") -> Any:
    """One call of `model` on the question alone (the `single_system` prompt + `template`)."""
    user = ep.roleset.render(template, question=ep.question.text, instruction=ep.instruction())
    system = ep.roleset.templates["single_system"]
    req = ep.request(model, system, user, role=role, position=position, context_answers=[],
                     sample_index=sample)
    return await ep.call(req, (0, 0, slot))


async def ask_single(ep: Episode, model: str) -> tuple:
    """The single-model body: (text, answer, correct, latency_ms)."""
    rec = await ask(ep, model, "single_user", 0)
    answer, correct = await ep.grade(rec.text)
    return rec.text, answer, correct, rec.latency_ms


async def run_lone(ep: Episode, index: int, role_name: str, mixture: Any) -> NodeResult:
    """The calls of a design that *is* a single model or a plurality vote (`Design.lone()`): each
    proposer makes its plain single call (`ask`: the `single:<model>` baseline's very request),
    since nobody reads a role's framing there and it would only add tokens; with k > 1 the
    proposers are asked until the vote is settled (`ask_until_settled`) and the first asked
    proposal with the winning answer is the output: the `vote` baseline's answer over those models
    in that order, from a subset of its calls."""
    def one(j: int) -> Any:
        return ask(ep, mixture.proposers[j], "single_user", j, sample=ep.sample_index * MAX_REPEATS)

    records, answers, latency = await ask_until_settled(one, mixture.k, ep.extract)
    proposals, answers, text = votes(records, answers)
    node = NodeTrace(index=index, role=role_name, gradable=True, text=text, proposals=proposals,
                     proposal_answers=answers)
    node.answer, node.correct = await ep.grade(text)
    return NodeResult(node, latency)


def single_job(task: Any, roleset: Any, question: Any, model: str, temperature: float = 0.0):
    """The `single:<model>` job for one question."""
    return episode_job(task, roleset, question, f"single:{model}", lambda ep: ask_single(ep, model), temperature)


def best_single_model(runner: Any, roleset: Any, models: Sequence[str], questions: Sequence[Any],
                      reward: Callable[[bool, float], float]) -> tuple[str, list[dict[str, Any]]]:
    """The model whose single answers get the best mean reward on `questions` (train + val),
    and one row per model (model, accuracy, cost_usd, reward). Ties go to the cheaper model,
    then to the name (never to pool order)."""
    jobs = [single_job(runner.task, roleset, q, m) for m in models for q in questions]
    traces = runner.run_jobs(jobs)
    rows, n = [], len(questions)
    for i, m in enumerate(models):
        ts = traces[i * n:(i + 1) * n]
        acc = sum(bool(t.correct) for t in ts if not t.failed) / max(n, 1)
        cost = sum(float(t.cost_usd) for t in ts) / max(n, 1)
        rows.append({"model": m, "accuracy": acc, "cost_usd": cost,
                     "reward": sum(reward(bool(t.correct) and not t.failed, float(t.cost_usd)) for t in ts) / max(n, 1)})
    best = max(rows, key=lambda r: (r["reward"], -r["cost_usd"], r["model"]))
    return best["model"], rows
