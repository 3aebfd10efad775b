"""Your own outcome table: validated with errors naming file, row and column; one command makes a replay pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieramas_gnn.backends.replay import Replayer, read_outcome_table
from hieramas_gnn.cli import main
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.tasks import register_task
from hieramas_gnn.tasks.generic import GenericTask

HEADER = "question_id,model,answer,correct\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "results.csv"
    path.write_text(header + body)
    return path


def test_a_valid_table_reads_with_correct_as_int(tmp_path):
    df = read_outcome_table(_csv(tmp_path, "q1,m1,Paris,1\nq1,m2,Lyon,false\nq2,m1,,0\n"))
    assert df["correct"].tolist() == [1, 0, 0]
    assert df["answer"].tolist() == ["Paris", "Lyon", ""]


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(UserError, match=r"results.csv: missing column\(s\) answer"):
        read_outcome_table(_csv(tmp_path, "q1,m1,1\n", header="question_id,model,correct\n"))


def test_nan_correct_names_row_and_column(tmp_path):
    with pytest.raises(UserError, match=r"results.csv: row 2, column correct: missing \(NaN\)"):
        read_outcome_table(_csv(tmp_path, "q1,m1,Paris,1\nq2,m1,Rome,NaN\n"))


def test_non_binary_correct_names_row_and_value(tmp_path):
    with pytest.raises(UserError, match=r"row 1, column correct: '0.5' is not 0/1"):
        read_outcome_table(_csv(tmp_path, "q1,m1,Paris,0.5\n"))


def test_empty_model_names_row_and_column(tmp_path):
    with pytest.raises(UserError, match=r"row 2, column model: empty or NaN"):
        read_outcome_table(_csv(tmp_path, "q1,m1,Paris,1\nq2,,Rome,1\n"))


def test_duplicate_pairs_name_both_rows(tmp_path):
    with pytest.raises(UserError, match=r"rows 1 and 3: duplicate \(question_id, model\) = \('q1', 'm1'\)"):
        read_outcome_table(_csv(tmp_path, "q1,m1,Paris,1\nq2,m1,Rome,1\nq1,m1,Paris,1\n"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_outcome_table(tmp_path / "nope.csv")


def test_pool_command_writes_a_loadable_replay_pool(tmp_path):
    table = _csv(tmp_path, "q1,my-llama,Paris,1\nq1,gpt-4o-mini,Lyon,0\n")
    out = tmp_path / "pools" / "mine.yaml"
    assert main(["outcomes", "pool", str(table), "--out", str(out), "--input-cost", "1e-7"]) == 0
    pool = load_pool(out)
    assert pool.name == "mine" and pool.names == ["gpt-4o-mini", "my-llama"]
    llama = pool.get("my-llama")
    assert llama.litellm_model == "replay/my-llama"
    assert (llama.input_cost_per_token, llama.output_cost_per_token) == (1e-7, 0.0)
    assert pool.get("gpt-4o-mini").input_cost_per_token > 0  # litellm's cost map lists it
    assert llama.extra["litellm_params"]["replay_table"] == str(table.resolve())


def test_pool_command_rejects_a_bad_table_with_exit_2(tmp_path, capsys):
    table = _csv(tmp_path, "q1,m1,Paris,2\n")
    assert main(["outcomes", "pool", str(table), "--out", str(tmp_path / "p.yaml")]) == 2
    assert "row 1, column correct: '2' is not 0/1" in capsys.readouterr().err
    assert not (tmp_path / "p.yaml").exists()


def test_replaying_a_user_table_reproduces_its_accuracy(tmp_path):
    qs = [{"id": f"q{i}", "question": f"Capital {i}?", "answer": f"City{i}"} for i in range(6)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qs))
    task = register_task(GenericTask("user_replay_task", tmp_path / "t.jsonl"))
    body = "".join(f"q{i},m1,{'City' + str(i) if i % 3 else 'Nowhere'},{int(i % 3 != 0)}\n" for i in range(6))
    table = _csv(tmp_path, body)
    replayer = Replayer(tables={})
    graded = []
    for q in task.load():
        text, _, _ = replayer.reply("m1", {"task": task.name, "question_id": q.id}, 100, str(table))
        graded.append(task.score(text, q).correct)
    assert graded == [i % 3 != 0 for i in range(6)]
