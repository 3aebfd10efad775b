"""Replay of the recorded-outcome tasks (`backends/recorded.py`): sampled pass rates, recorded
verdicts and costs, the documented answers of wrong models, mixes, and `cost: recorded` pools."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from hieramas_gnn.backends.recorded import GENERATIONS, generation, right_generations
from hieramas_gnn.backends.replay import Replayer
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.llm.pool import load_pool, pool_from_dict
from hieramas_gnn.tasks import get_task
from tests.conftest import require_shared

ROUTERDC = "outcomes/routerdc_7models.csv.gz"
ROUTERBENCH = "outcomes/routerbench_subset.csv.gz"


def test_runs_and_repeats_read_distinct_generations():
    runs = [generation(16 * r) for r in range(GENERATIONS)]
    repeats = [generation(16 * 3 + o) for o in range(GENERATIONS)]
    assert sorted(runs) == sorted(repeats) == list(range(GENERATIONS))


def test_k_of_ten_generations_are_right():
    assert len(right_generations("m", "q", 7)) == 7 and not right_generations("m", "q", 0)
    assert right_generations("m", "q", 4) <= right_generations("m", "q", 5)


def test_cost_recorded_is_only_for_replay_models():
    bad = {"models": [{"name": "x", "litellm_model": "openai/gpt-4o-mini", "cost": "recorded"}]}
    with pytest.raises(ConfigError, match="cost: `recorded` is for replay models"):
        pool_from_dict(bad, where="pool t", default_name="t")
    with pytest.raises(ConfigError, match="cost: must be one of"):
        pool_from_dict({"models": [{"name": "x", "litellm_model": "replay/x", "cost": "free"}]},
                       where="pool t", default_name="t")
    ok = pool_from_dict({"models": [{"name": "x", "litellm_model": "replay/x", "cost": "recorded"}]},
                        where="pool t", default_name="t")
    assert ok.models[0].cost_source == "recorded" and ok.models[0].input_cost_per_token == 0.0


# ------------------------------------------------------------------ ../shared/data


def _score(replayer: Replayer, task, model: str, q, sample: int = 0, **kw) -> tuple[bool, float | None]:
    text, _, _, cost = replayer.call(model, {"task": task.name, "question_id": q.id, "sample_index": sample}, 100, **kw)
    return task.score(text, q).correct, cost


def test_ten_runs_reproduce_routerdc_pass_rates_exactly():
    shared = require_shared(ROUTERDC)
    task = get_task("routerdc_humaneval")
    table = pd.read_csv(shared / ROUTERDC)
    table = table[table["routerdc_file"] == "humaneval_test"]
    rep = Replayer()
    questions = {q.id: q for q in task.load(split="test")}
    for model, rows in table.groupby("model"):
        got = np.mean([[_score(rep, task, model, questions[qid], 16 * r)[0] for r in range(GENERATIONS)]
                       for qid in rows["question_id"]])
        assert got == pytest.approx(rows["score"].mean(), abs=1e-9), model


def test_routerdc_multiple_choice_replays_the_verdict_every_sample():
    shared = require_shared(ROUTERDC)
    task = get_task("routerdc_arc")
    table = pd.read_csv(shared / ROUTERDC)
    rows = table[table["routerdc_file"] == "arc_challenge_test"].head(60)
    rep = Replayer()
    for model, qid, correct in zip(rows["model"], rows["question_id"], rows["correct"]):
        q = task.get(qid)
        assert {_score(rep, task, model, q, s)[0] for s in (0, 16, 33)} == {bool(correct)}


def test_routerbench_replays_verdicts_real_letters_and_costs():
    shared = require_shared(ROUTERBENCH)
    task = get_task("routerbench_arc")
    table = pd.read_csv(shared / ROUTERBENCH)
    rows = table[table["benchmark"] == "arc-challenge"].sample(300, random_state=0)
    rep = Replayer()
    for model, qid, correct, cost, response in zip(rows["model"], rows["question_id"], rows["correct"],
                                                    rows["total_cost_usd"], rows["response"]):
        q = task.get(qid)
        text, _, _, got_cost = rep.call(model, {"task": task.name, "question_id": qid}, 100)
        assert task.score(text, q).correct == bool(correct) and got_cost == pytest.approx(cost)
        assert text == response  # the real reply: it grades as the table does


def test_wrong_answers_are_distinct_or_shared_as_configured():
    require_shared(ROUTERDC)
    task = get_task("routerdc_gsm8k")
    q = next(q for q in task.load(split="test") if q.id == "gsm8k/test/1")
    models = Replayer().table("routerdc_gsm8k").models()

    def wrong(rep: Replayer) -> list[str]:
        outs = [rep.table(task.name).get(m, q.id, s) for m in models for s in range(GENERATIONS)]
        return [o.answer for o in outs if not o.correct]

    distinct, shared = wrong(Replayer()), wrong(Replayer(wrong_answers="shared"))
    assert distinct and len(set(distinct)) == len(distinct) and set(shared) == {"wrong-1"}


def test_a_mixed_task_replays_each_question_from_its_component():
    require_shared(ROUTERDC)
    mix = get_task("routerdc")
    rep = Replayer()
    for q in [next(q for q in mix.load(split="test") if q.meta["domain"] == d) for d in ("mmlu", "gsm8k")]:
        text, *_ = rep.call("meta-llama/Meta-Llama-3-8B", {"task": "routerdc", "question_id": q.id}, 100)
        assert mix.score(text, q).correct == get_task(q.task).score(text, q).correct


def test_a_recorded_cost_pool_prices_each_call_at_the_recorded_cost():
    shared = require_shared(ROUTERBENCH)
    from hieramas_gnn.eval import baselines as B
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.build import ClientSettings, make_client

    pool = load_pool("replay-routerbench-11")
    task = get_task("routerbench")
    qs = [q for q in task.load(split="test") if q.meta["domain"] == "mbpp"][:20]
    client = make_client(ClientSettings(cache_path=None, cache_mode="off"), pool)
    bl = B.Baselines(task, get_roleset(task.family), pool.names, B.BaselineConfig(anchor=pool.names[0]))
    traces = asyncio.run(B.run_baselines(bl, ["single:gpt-4-1106-preview"], qs, client))["single:gpt-4-1106-preview"]
    table = pd.read_csv(shared / ROUTERBENCH).set_index(["model", "question_id"])
    want = [table.loc[("gpt-4-1106-preview", q.id), "total_cost_usd"] for q in qs]
    assert [t.cost_usd for t in traces] == pytest.approx(want)
    assert [t.component for t in traces] == ["routerbench_mbpp"] * len(qs)
