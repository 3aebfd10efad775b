"""The replay backend's repeated samples: a call that reads other answers draws its reply per
(seed, model, question, sample index), so repeated samples of one call differ and the same
sample is the same reply (a user outcome table; no shared data needed)."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.backends.replay import Replayer
from hieramas_gnn.tasks import register_task
from hieramas_gnn.tasks.generic import GenericTask


@pytest.fixture
def table(tmp_path):
    qs = [{"id": f"q{i}", "question": f"Capital {i}?", "answer": f"City{i}"} for i in range(4)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qs))
    task = register_task(GenericTask("replay_samples_task", tmp_path / "t.jsonl"))
    rows = "".join(f"q{i},m1,{'City' + str(i) if i % 2 else 'Nowhere'},{i % 2}\n" for i in range(4))
    path = tmp_path / "outcomes.csv"
    path.write_text("question_id,model,answer,correct\n" + rows)
    return task, str(path)


def _synthesize(replayer, task, table, sample_index):
    meta = {"task": task.name, "question_id": "q0", "position": "synthesizer", "sample_index": sample_index,
            "context_answers": ["City0", "Lyon", "Nice"]}
    return replayer.reply("m1", meta, 100, table)[0]


def test_repeated_samples_of_a_synthesis_call_draw_different_replies(table):
    task, path = table
    replayer = Replayer(tables={}, seed=0)
    texts = [_synthesize(replayer, task, path, i) for i in range(8)]
    assert len(set(texts)) > 1, texts
    assert texts == [_synthesize(Replayer(tables={}, seed=0), task, path, i) for i in range(8)]


def test_the_seed_changes_the_draws_of_the_same_samples(table):
    task, path = table
    draws = {seed: [_synthesize(Replayer(tables={}, seed=seed), task, path, i) for i in range(8)]
             for seed in (0, 1, 2)}
    assert len({tuple(v) for v in draws.values()}) > 1, draws
