"""Baselines over the MMLU-Redux replay pool reproduce the real outcome table.

On a spread subset of the 5,700 questions (every 25th: 228 questions, all subjects) through the
real client with the replay provider and no cache: `single:<m>` equals each model's accuracy in
`outcomes/mmlu_redux_helm14.csv.gz`, `vote` equals the plurality vote of `hieramas outcomes
inspect` (its tie rule: the most accurate model's answer, given as `vote_order`), `oracle` its
oracle; and every dollar the client spent appears in exactly one trace. The full 5,700-question
run is `experiments/baselines_mmlu_redux_replay.sh` (result in experiments/results/).
"""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.commands.outcomes import read_table, summarize
from hieramas_gnn.eval.baselines import (BaselineConfig, Baselines, expand_methods, plurality,
                                         result_rows, run_baselines)
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task

TABLE = "outcomes/mmlu_redux_helm14.csv.gz"
STRIDE = 25


@pytest.fixture(scope="module")
def replay_run():
    from conftest import require_shared

    root = require_shared(TABLE)
    task, pool = get_task("mmlu_redux"), load_pool("replay-mmlu-redux")
    questions = task.load()[::STRIDE]
    df = read_table(root / TABLE)
    df = df[df["question_id"].isin({q.id for q in questions})]
    summary = summarize(df)
    order = tuple(m["model"] for m in summary["models"])  # most accurate first: inspect's tie rule
    cfg = BaselineConfig(vote_order=order)
    baselines = Baselines(task, get_roleset(task.family), pool.names, cfg)
    client = LLMClient(pool, None, ClientConfig(max_concurrency=64, per_model_concurrency=64))
    methods = expand_methods(["single", "vote", "oracle"], pool.names)
    traces = asyncio.run(run_baselines(baselines, methods, questions, client, max_in_flight=64))
    return questions, df, summary, traces, client


def test_single_accuracy_equals_the_outcome_table(replay_run):
    questions, _, summary, traces, _ = replay_run
    rows = {r["method"]: r for r in result_rows(traces)}
    assert summary["n_questions"] == len(questions)
    for m in summary["models"]:
        assert rows[f"single:{m['model']}"]["accuracy"] == pytest.approx(m["accuracy"], abs=1e-12)


def test_vote_equals_the_plurality_of_outcomes_inspect(replay_run):
    _, _, summary, traces, _ = replay_run
    rows = {r["method"]: r for r in result_rows(traces)}
    assert rows["vote"]["accuracy"] == pytest.approx(summary["plurality"]["accuracy"], abs=1e-12)


def test_vote_answers_equal_the_plurality_computed_from_the_table(replay_run):
    _, df, summary, traces, _ = replay_run
    order = [m["model"] for m in summary["models"]]
    by_q = df.assign(letter=df["answer"].str.strip().where(df["answer"].str.strip().isin(list("ABCD"))))
    table = by_q.pivot(index="question_id", columns="model", values="letter")[order]
    expected = {qid: plurality([None if isinstance(a, float) else a for a in row])
                for qid, row in zip(table.index, table.itertuples(index=False))}
    assert {t.question_id: t.answer for t in traces["vote"]} == expected


def test_oracle_equals_the_outcome_table_oracle(replay_run):
    _, _, summary, traces, _ = replay_run
    rows = {r["method"]: r for r in result_rows(traces)}
    assert rows["oracle"]["accuracy"] == pytest.approx(summary["oracle"]["accuracy"], abs=1e-12)


def test_every_dollar_spent_is_in_exactly_one_trace(replay_run):
    _, _, _, traces, client = replay_run
    paid = [c for ts in traces.values() for t in ts for c in t.calls if not c.cache_hit]
    assert len(paid) == client.stats.calls
    assert sum(c.cost_usd for c in paid) == pytest.approx(client.stats.spent_usd, rel=1e-9)
    for method, ts in traces.items():
        row = next(r for r in result_rows({method: ts}))
        assert row["cost_usd"] * len(ts) == pytest.approx(sum(c.cost_usd for t in ts for c in t.calls))


def test_every_baseline_accounts_for_every_paid_call_on_replay():
    from conftest import require_shared

    require_shared(TABLE)
    task, pool = get_task("mmlu_redux"), load_pool("replay-mmlu-redux")
    questions = task.load()[::950]  # 6 questions, 6 subjects
    baselines = Baselines(task, get_roleset(task.family), pool.names, BaselineConfig(fixed_k=2))
    client = LLMClient(pool, None, ClientConfig(max_concurrency=64, per_model_concurrency=64))
    methods = expand_methods(None, pool.names[:1]) + ["vote", "oracle"]
    methods = [m for m in dict.fromkeys(methods)]
    traces = asyncio.run(run_baselines(baselines, methods, questions, client, max_in_flight=64))
    ranking = baselines.anchor_traces  # the fair anchor: the pool ranked on train+val questions
    paid = [c for ts in [*traces.values(), ranking] for t in ts for c in t.calls if not c.cache_hit]
    assert not any(t.failed for ts in traces.values() for t in ts)
    assert len(paid) == client.stats.calls
    assert sum(c.cost_usd for c in paid) == pytest.approx(client.stats.spent_usd, rel=1e-9)
