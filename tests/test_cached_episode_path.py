"""The replayed-episode fast path: cached calls answered without awaiting, remembered answer
extraction and grading, design views computed once — all giving what the plain path gives."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import networkx as nx
import numpy as np
import pytest

from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import Job, run_many
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.supernode import AnswerMemo, Episode
from hieramas_gnn.mas.testing import LetterTask
from hieramas_gnn.mas.topologies import random_dag
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.base import Question, Score


@dataclasses.dataclass
class CountingTask(LetterTask):
    extracted: int = 0
    scored: int = 0

    def extract(self, response, question):
        self.extracted += 1
        return super().extract(response, question)

    def score(self, response, question):
        self.scored += 1
        return super().score(response, question)


def test_answer_memo_extracts_and_grades_each_reply_of_a_question_once_per_task():
    memo, task, other = AnswerMemo(), CountingTask(), CountingTask()
    q0, q1 = task.questions(2)
    for _ in range(3):
        assert memo.extract(task, q0, "so Answer: B") == "B"
        assert memo.score(task, q0, "so Answer: A") == Score(True, "A")
    assert (task.extracted, task.scored) == (2, 1)  # one extract, one score (which extracts)
    assert memo.extract(task, q1, "so Answer: B") == "B"  # another question
    assert memo.extract(other, q0, "so Answer: B") == "B"  # another task object
    assert (task.extracted, other.extracted) == (3, 1)


def test_answer_memo_starts_over_when_full_and_skips_unhashable_questions():
    memo, task = AnswerMemo(size=2), CountingTask()
    q = task.questions(1)[0]
    for text in ("Answer: A", "Answer: B", "Answer: C", "Answer: A"):
        memo.extract(task, q, text)
    assert task.extracted == 4 and len(memo._entries) == 2  # full at A, B: started over with C, A
    odd = Question(id="odd/0", task="letters", text="?", gold=["A"])  # a list as gold: unhashable
    assert [memo.extract(task, odd, "Answer: D") for _ in range(2)] == ["D", "D"]
    assert task.extracted == 6


def test_code_grades_are_not_remembered():
    @dataclasses.dataclass
    class CodeTask(CountingTask):
        answer_kind: str = "code"

    task = CodeTask()
    ep = Episode(task, task.questions(1)[0], client=None, roleset=get_roleset("synthetic"))
    for _ in range(2):
        assert asyncio.run(ep.grade("Answer: A")) == ("A", True)
    assert task.scored == 2


class AwaitOnly:
    """A client with `complete` only (no `lookup`): every call is awaited as before."""

    def __init__(self, client):
        self.client = client

    async def complete(self, request):
        return await self.client.complete(request)


def _designs(pool, roles, n, rng):
    models = list(pool.names)
    out = []
    for i in range(n):
        mixtures = tuple(Mixture(tuple(rng.choice(models, size=1 + (i + j) % 3)), str(rng.choice(models)))
                         if (i + j) % 5 else None for j in range(len(roles)))
        if all(m is None for m in mixtures):
            mixtures = (Mixture((models[0],), models[0]),) + mixtures[1:]
        out.append(Design(roles, mixtures, random_dag(len(roles), 0.5, rng), models[i % len(models)]))
    return out


def test_cached_calls_give_the_traces_and_counts_of_awaited_calls(tmp_path):
    pool, task, roleset = load_pool("sim"), get_task("synthetic"), get_roleset("synthetic")
    roles = tuple(r.name for r in roleset.roles)
    designs = _designs(pool, roles, 8, np.random.default_rng(0))
    questions = task.load(split="train", limit=4)
    with RolloutCache(tmp_path / "rollouts.sqlite", "rw") as cache:
        def traces(client):
            jobs = [Job(d, q, task, roleset) for d, q in itertools.product(designs, questions)]
            out = asyncio.run(run_many(jobs, client, max_in_flight=8))
            return [{k: v for k, v in t.to_dict().items() if k != "wall_ms"} for t in out]

        fill = LLMClient(pool, cache, backend={"sim": {"latency": "off"}})
        first = traces(fill)
        assert fill.stats.calls > 0
        fast, plain = (LLMClient(pool, cache, backend={"sim": {"latency": "off"}}) for _ in range(2))
        assert traces(fast) == traces(AwaitOnly(plain))
        assert fast.stats.calls == plain.stats.calls == 0
        assert fast.stats.cache_hits == plain.stats.cache_hits == fill.stats.calls + fill.stats.cache_hits
        assert fast.stats.cached_usd == pytest.approx(plain.stats.cached_usd)
        for a, b in zip(first, traces(fast)):  # the hits answer what the calls answered
            assert [(c["model"], c["key"], c["cost_usd"]) for c in a["calls"]] == \
                [(c["model"], c["key"], c["cost_usd"]) for c in b["calls"]]
            assert (a["answer"], a["correct"]) == (b["answer"], b["correct"])


def test_design_views_match_the_graph_and_are_fresh_lists():
    rng = np.random.default_rng(1)
    pool, roleset = load_pool("sim"), get_roleset("synthetic")
    roles = tuple(r.name for r in roleset.roles)
    for design in _designs(pool, roles, 20, rng):
        h = design.active_dag()
        assert design.predecessors() == {i: sorted(h.predecessors(i)) for i in h.nodes}
        assert design.sinks() == sorted(i for i in h.nodes if h.out_degree(i) == 0)
        assert design.topological_order() == list(nx.lexicographical_topological_sort(design.to_networkx()))
        design.sinks().append(99)
        design.predecessors().clear()
        design.topological_order().pop()
        assert 99 not in design.sinks() and design.predecessors() and len(design.topological_order()) == design.n


class CountingCache(RolloutCache):
    """A rollout cache that counts its reads."""

    reads = 0

    def get(self, key, model_name=""):
        self.reads += 1
        return super().get(key, model_name)


def test_remembered_hits_give_the_same_traces_and_counts_with_one_read_per_record(tmp_path):
    pool, task, roleset = load_pool("sim"), get_task("synthetic"), get_roleset("synthetic")
    roles = tuple(r.name for r in roleset.roles)
    designs = _designs(pool, roles, 8, np.random.default_rng(1))
    questions = task.load(split="train", limit=3)
    jobs = [Job(d, q, task, roleset) for d, q in itertools.product(designs, questions)]

    def traces(client):
        out = asyncio.run(run_many(jobs, client, max_in_flight=8))
        return [{k: v for k, v in t.to_dict().items() if k != "wall_ms"} for t in out]

    with CountingCache(tmp_path / "rollouts.sqlite", "rw") as cache:
        traces(LLMClient(pool, cache, backend={"sim": {"latency": "off"}}))
        plain, held = (LLMClient(pool, cache, backend={"sim": {"latency": "off"}}) for _ in range(2))
        cache.reads = 0
        want = traces(plain) + traces(plain)
        plain_reads, cache.reads = cache.reads, 0
        with held.remembering_hits():
            got = traces(held) + traces(held)
            distinct = len({c["key"] for t in got for c in t["calls"]})
            assert cache.reads == distinct < plain_reads  # each record read (and verified) once
        assert got == want
        assert (held.stats.cache_hits, held.stats.cached_usd) == (plain.stats.cache_hits, plain.stats.cached_usd)
        cache.reads = 0
        traces(held)  # outside the block every hit is read again
        assert cache.reads == plain_reads // 2 and held._hits is None


def test_a_record_damaged_after_a_remembered_read_is_refused_on_the_next_read(tmp_path):
    import sqlite3

    from hieramas_gnn.llm.cache import CacheDamaged

    pool, task, roleset = load_pool("sim"), get_task("synthetic"), get_roleset("synthetic")
    roles = tuple(r.name for r in roleset.roles)
    jobs = [Job(d, q, task, roleset) for d in _designs(pool, roles, 2, np.random.default_rng(2))
            for q in task.load(split="train", limit=1)]
    with RolloutCache(tmp_path / "rollouts.sqlite", "rw") as cache:
        client = LLMClient(pool, cache, backend={"sim": {"latency": "off"}})
        asyncio.run(run_many(jobs, client, max_in_flight=4))
        with client.remembering_hits():
            asyncio.run(run_many(jobs, client, max_in_flight=4))
        with sqlite3.connect(tmp_path / "rollouts.sqlite") as conn:
            conn.execute("UPDATE records SET text = text || ' (edited)'")
        with pytest.raises(CacheDamaged, match="checksum"), client.remembering_hits():
            asyncio.run(run_many(jobs, client, max_in_flight=4))
