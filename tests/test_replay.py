"""The `replay/` backend over the real outcome tables (needs ../shared/data)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.backends.replay import Replayer
from hieramas_gnn.tasks import get_task

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def replayer():
    from tests.conftest import require_shared

    require_shared("outcomes/mmlu_redux_helm14.csv.gz", "outcomes/gsm8k_zeroeval.csv.gz")
    return Replayer()


def call(rep, model, task, qid, **kw):
    return rep.reply(model, {"task": task, "question_id": qid, **kw}, 400)


def test_proposer_replay_reproduces_every_mmlu_redux_accuracy_exactly(replayer, shared_data):
    task = get_task("mmlu_redux")
    table = pd.read_csv(shared_data / "outcomes/mmlu_redux_helm14.csv.gz")
    questions = {q.id: q for q in task.load()}
    for model, rows in table.groupby("model"):
        got = sum(task.score(call(replayer, model, "mmlu_redux", qid)[0], questions[qid]).correct
                  for qid in rows["question_id"])
        assert got == int(rows["correct"].sum()), model


def test_proposer_gets_the_real_full_reply_where_there_is_one(replayer):
    text, _, completion = call(replayer, "gpt-4o-2024-05-13", "gsm8k", "gsm8k/test/3")
    raw = replayer.table("gsm8k").raw("gpt-4o-2024-05-13", "gsm8k/test/3")
    assert text == raw and '"answer"' in raw


def test_completion_tokens_come_from_the_real_reply_length(replayer, shared_data):
    table = pd.read_csv(shared_data / "outcomes/gsm8k_zeroeval.csv.gz")
    row = table[(table.model == "gpt-4o-2024-05-13") & (table.question_id == "gsm8k/test/3")].iloc[0]
    _, prompt, completion = call(replayer, "gpt-4o-2024-05-13", "gsm8k", "gsm8k/test/3")
    assert (prompt, completion) == (100, int(row.output_chars) // 4)


def test_synthesizer_outputs_a_context_answer_or_its_own(replayer):
    task = get_task("mmlu_redux")
    qid = "mmlu/abstract_algebra/34"
    own = task.extract(call(replayer, "openai_gpt-4-0613", "mmlu_redux", qid)[0], task.get(qid))
    for i in range(20):
        text, _, _ = call(replayer, "openai_gpt-4-0613", "mmlu_redux", qid, position="synthesizer",
                          context_answers=["B", "C", None], sample_index=i)
        assert task.extract(text, task.get(qid)) in {"B", "C", own}


def test_synthesizer_is_deterministic_per_sample_index(replayer):
    kw = dict(position="synthesizer", context_answers=["B", "C", "D"], sample_index=7)
    a = call(replayer, "openai_gpt-4-0613", "mmlu_redux", "mmlu/abstract_algebra/34", **kw)
    b = Replayer().reply("openai_gpt-4-0613", {"task": "mmlu_redux", "question_id": "mmlu/abstract_algebra/34",
                                                **kw}, 400)
    assert a == b


def test_unknown_model_is_named(replayer):
    with pytest.raises(UserError, match="no-such-model"):
        call(replayer, "no-such-model", "mmlu_redux", "mmlu/abstract_algebra/34")


def test_unknown_question_is_named(replayer):
    with pytest.raises(UserError, match="mmlu/nowhere/1"):
        call(replayer, "openai_gpt-4-0613", "mmlu_redux", "mmlu/nowhere/1")


def test_task_without_a_table_is_named(replayer):
    with pytest.raises(UserError, match="synthetic"):
        call(replayer, "openai_gpt-4-0613", "synthetic", "synthetic/logic/1/0")


def test_replay_pool_through_litellm(replayer):
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.llm.types import LLMRequest

    pool = load_pool("replay-mmlu-redux")
    assert len(pool) == 14
    client = LLMClient(pool)
    req = LLMRequest(model="openai_gpt-4-0613", messages=({"role": "user", "content": "Q?"},),
                     metadata={"task": "mmlu_redux", "question_id": "mmlu/abstract_algebra/34",
                               "role": "Solver", "position": "proposer", "context_answers": []})
    rec = asyncio.run(client.complete(req))
    assert rec.text == call(replayer, "openai_gpt-4-0613", "mmlu_redux", "mmlu/abstract_algebra/34")[0]
    assert rec.cost_usd > 0


def test_proposer_replay_reproduces_gsm8k_accuracy_exactly(replayer, shared_data):
    task = get_task("gsm8k")
    table = pd.read_csv(shared_data / "outcomes/gsm8k_zeroeval.csv.gz")
    questions = {q.id: q for q in task.load()}
    for model in ("gpt-4o-2024-05-13", "gemma-2-2b-it"):
        rows = table[table.model == model]
        got = sum(task.score(call(replayer, model, "gsm8k", qid)[0], questions[qid]).correct
                  for qid in rows["question_id"])
        assert got == int(rows["correct"].sum()), model


def test_math_l5_replay_keeps_real_answers_the_table_over_credits(replayer, shared_data):
    # ZeroEval graded MATH-L5 by first-number equality (`4/3` counts for gold `4`); replay keeps
    # the real answer, so only such table-correct rows can come out wrong, and they are few.
    task = get_task("math_l5")
    table = pd.read_csv(shared_data / "outcomes/math_l5_zeroeval.csv.gz")
    rows = table[table.model == "gpt-4o-2024-05-13"]
    graded = [task.score(call(replayer, "gpt-4o-2024-05-13", "math_l5", qid)[0], task.get(qid)).correct
              for qid in rows["question_id"]]
    flips = [(bool(c), g) for c, g in zip(rows["correct"], graded) if bool(c) != g]
    assert all(table_says for table_says, _ in flips)
    assert len(flips) <= 0.01 * len(rows)
