"""`hieramas outcomes inspect`: accuracies, plurality vote and oracle computed from the table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hieramas_gnn.cli import main
from hieramas_gnn.commands.outcomes import summarize


def write(tmp_path, rows):
    path = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=["benchmark", "question_id", "model", "answer", "correct"]).to_csv(path, index=False)
    return path


def test_plurality_tie_goes_to_the_most_accurate_models_answer(tmp_path):
    rows = [("b", "q1", "m1", "A", 1), ("b", "q1", "m2", "B", 0),  # tie A/B: m1 is more accurate
            ("b", "q2", "m1", "C", 1), ("b", "q2", "m2", "C", 1)]
    s = summarize(pd.read_csv(write(tmp_path, rows), dtype={"answer": str}, keep_default_na=False))
    assert s["plurality"] == {"accuracy": 1.0, "ties": 1, "tie_rule": s["plurality"]["tie_rule"]}


def test_empty_answers_do_not_vote_and_oracle_counts_any_right(tmp_path):
    rows = [("b", "q1", "m1", "", 0), ("b", "q1", "m2", "B", 0), ("b", "q1", "m3", "A", 1),
            ("b", "q2", "m1", "D", 0), ("b", "q2", "m2", "D", 0), ("b", "q2", "m3", "C", 0)]
    s = summarize(pd.read_csv(write(tmp_path, rows), dtype={"answer": str}, keep_default_na=False))
    assert s["oracle"]["accuracy"] == 0.5
    assert s["plurality"]["ties"] == 1  # q1: B vs A, m3 (more accurate) wins -> right
    assert s["plurality"]["accuracy"] == 0.5


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("question_id,model,answer\nq,m,A\n")
    assert main(["outcomes", "inspect", str(path)]) == 2


@pytest.mark.shared_data
def test_mmlu_redux_inspect_matches_pandas(tmp_path, shared_data, capsys):
    src = shared_data / "outcomes/mmlu_redux_helm14.csv.gz"
    out = tmp_path / "o.json"
    assert main(["outcomes", "inspect", str(src), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    df = pd.read_csv(src, dtype={"answer": str}, keep_default_na=False)
    acc = df.groupby("model")["correct"].mean()
    assert {m["model"]: m["accuracy"] for m in got["models"]} == pytest.approx(acc.to_dict())
    assert got["oracle"]["accuracy"] == pytest.approx(df.groupby("question_id")["correct"].max().mean())
    # plurality, recomputed independently with pandas: per question the answer most models gave
    # (empty answers abstain), ties to the answer of the most accurate model, then the text
    order = {m: i for i, m in enumerate(acc.sort_values(ascending=False).index)}
    given = df.assign(a=df["answer"].str.strip(), rank=df["model"].map(order))
    given = given[given["a"] != ""]
    votes = (given.groupby(["question_id", "a"])
             .agg(count=("model", "size"), best=("rank", "min"), right=("correct", "mean")).reset_index()
             .sort_values(["question_id", "count", "best", "a"], ascending=[True, False, True, True]))
    right = int((votes.groupby("question_id").head(1)["right"] > 0.5).sum())
    assert got["plurality"]["accuracy"] == pytest.approx(right / df["question_id"].nunique())
    printed = capsys.readouterr().out
    assert "plurality vote" in printed and "oracle" in printed


def test_numeric_tables_vote_on_answer_num(tmp_path):
    path = tmp_path / "n.csv"
    pd.DataFrame([("b", "q1", "m1", "18", 18.0, 1), ("b", "q1", "m2", "18.0", 18.0, 1),
                  ("b", "q1", "m3", "$17", 17.0, 0)],
                 columns=["benchmark", "question_id", "model", "answer", "answer_num", "correct"]).to_csv(path, index=False)
    s = summarize(pd.read_csv(path, dtype={"answer": str}, keep_default_na=False))
    assert s["plurality"]["accuracy"] == 1.0 and s["plurality"]["ties"] == 0
