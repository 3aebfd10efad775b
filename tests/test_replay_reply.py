"""`Replayer.reply` over a user outcome table (no shared data): the draw of a call that reads
other answers is the behaviour model's `choose` keyed by (seed, "replay", model, question,
sample index) with the model's table accuracy as its strength; token counts from the prompt and
the real reply length; errors name what is missing."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.backends.behaviour import choose, rng_for
from hieramas_gnn.backends.replay import NO_ANSWER, Replayer
from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks import register_task
from hieramas_gnn.tasks.generic import GenericTask

ROWS = [  # question, model, answer, correct, output_chars; m1 is right on 3 of 4 (strength 0.75)
    ("q0", "m1", "City0", 1, 403), ("q1", "m1", "City1", 1, 3), ("q2", "m1", "City2", 1, ""),
    ("q3", "m1", "", 0, ""), ("q0", "m2", "Lyon", 0, 40), ("q1", "m2", "City1", 1, 40),
    ("q2", "m2", "Nice", 0, 40), ("q3", "m2", "City3", 1, 40),
]


@pytest.fixture
def setup(tmp_path):
    qs = [{"id": f"q{i}", "question": f"Capital {i}?", "answer": f"City{i}"} for i in range(4)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qs))
    task = register_task(GenericTask("replay_reply_task", tmp_path / "t.jsonl"))
    path = tmp_path / "outcomes.csv"
    path.write_text("question_id,model,answer,correct,output_chars\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in ROWS))
    return task, str(path)


def _reply(rep, task, path, model, qid, **meta):
    return rep.reply(model, {"task": task.name, "question_id": qid, **meta}, 400, path)


def _expected(rep, task, path, model, qid, context, sample_index, strength):
    q = task.get(qid)
    own = task.extract(rep.real_reply(task.name, model, qid, path), q)
    chosen = choose(own, context, lambda a: task.is_correct(a, q), strength, rep.behaviour,
                    rng_for(rep.seed, "replay", model, qid, sample_index))
    if chosen == own:
        return rep.real_reply(task.name, model, qid, path)
    return task.render_answer(chosen, q) if chosen is not None else NO_ANSWER


@pytest.mark.parametrize("qid", ["q0", "q3"])  # own answer right / none (an empty answer)
def test_a_synthesis_draw_is_the_behaviour_model_keyed_by_seed_model_question_and_sample(setup, qid):
    task, path = setup
    rep = Replayer(tables={}, seed=3)
    context = ["Lyon", "City0", None] if qid == "q0" else ["Nice", "Paris"]
    got = [_reply(rep, task, path, "m1", qid, context_answers=context, sample_index=i)[0] for i in range(16)]
    want = [_expected(rep, task, path, "m1", qid, context, i, strength=0.75) for i in range(16)]
    assert got == want
    assert len(set(got)) > 1


def test_a_missing_sample_index_is_sample_0(setup):
    task, path = setup
    rep = Replayer(tables={}, seed=1)
    for qid in ("q0", "q1", "q2"):
        ctx = ["Lyon", "Nice", "Rome"]
        assert (_reply(rep, task, path, "m1", qid, context_answers=ctx)
                == _reply(rep, task, path, "m1", qid, context_answers=ctx, sample_index=0))


def test_token_counts_come_from_the_prompt_and_the_real_reply_length(setup):
    task, path = setup
    rep = Replayer(tables={})
    _, prompt, completion = _reply(rep, task, path, "m1", "q0")
    assert (prompt, completion) == (100, 100) and isinstance(prompt, int) and isinstance(completion, int)
    assert _reply(rep, task, path, "m1", "q1")[2] == 1  # 3 chars: at least one token
    text, _, completion = _reply(rep, task, path, "m1", "q2")  # no output_chars: the reply's length
    assert completion == max(1, len(text) // 4)
    assert rep.reply("m1", {"task": task.name, "question_id": "q0"}, 4, path)[1] == 1


def test_missing_metadata_and_unknown_models_are_named(setup):
    task, path = setup
    rep = Replayer(tables={})
    with pytest.raises(UserError) as err:
        rep.reply("m1", {"task": task.name}, 100, path)
    assert str(err.value) == "replay/m1: call metadata lacks 'question_id'"
    with pytest.raises(UserError, match=f"unknown model 'm9' for task {task.name}"):
        _reply(rep, task, path, "m9", "q0")
