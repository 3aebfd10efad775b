"""`hieramas outcomes inspect FILE`: what a tidy outcome table says, computed from the data.

    hieramas outcomes inspect ../shared/data/outcomes/mmlu_redux_helm14.csv.gz [--json OUT]

FILE has columns `question_id, model, answer, correct` (the schema of `../shared/data/outcomes/`).
Printed: each model's accuracy; the plurality vote of all models; the oracle ("at least one model
right"). All three are over the questions every model answered (the common questions).

Plurality vote, per question: answers are grouped by `answer_num` when the table has it and it
is set (so `18` and `18.0` are one answer), else by the answer text stripped; empty answers do
not vote. The answer with the most votes wins; a tie goes to the tied answer given by the most
accurate model (overall accuracy in the file), and if that model gave several, the
lexicographically smallest. The vote is right when the models that gave the winning answer were
graded right (a majority of them, should they disagree). A question where no model gave an
answer counts as wrong.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("outcomes", help="inspect real per-question outcome tables", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="outcomes_command", metavar="{inspect}", required=True)
    ins = sub.add_parser("inspect", help="per-model accuracy, plurality vote and oracle of an outcome table")
    ins.add_argument("file", help="outcome table (.csv or .csv.gz)")
    ins.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    ins.set_defaults(func=handle_inspect)


def read_table(path: str | Path):
    import pandas as pd

    from hieramas_gnn.errors import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"outcome table {path} does not exist")
    try:
        df = pd.read_csv(path, dtype={"answer": str, "question_id": str, "model": str}, keep_default_na=False)
    except Exception as exc:  # a bad file: say which and why, nothing else
        raise UserError(f"outcome table {path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in ("question_id", "model", "answer", "correct") if c not in df]
    if missing:
        raise UserError(f"outcome table {path}: missing column(s) {missing}")
    df["correct"] = df["correct"].astype(int)
    return df


def _vote_key(df):
    if "answer_num" in df:
        num = df["answer_num"].astype(str).str.strip()
        return num.where(num != "", df["answer"].str.strip())
    return df["answer"].str.strip()


def summarize(df) -> dict:
    """Per-model accuracy, plurality vote and oracle over the common questions."""
    n_models = df["model"].nunique()
    per_q = df.groupby("question_id")["model"].nunique()
    common = set(per_q[per_q == n_models].index)
    d = df[df["question_id"].isin(common)].copy()
    acc = d.groupby("model")["correct"].mean().sort_values(ascending=False)
    rank = {m: i for i, m in enumerate(acc.index)}  # 0 = most accurate
    d["key"] = _vote_key(d)
    d["rank"] = d["model"].map(rank)
    voted = d[d["key"] != ""]
    g = voted.groupby(["question_id", "key"]).agg(votes=("model", "size"), best=("rank", "min"),
                                                  right=("correct", "mean")).reset_index()
    g = g.sort_values(["question_id", "votes", "best", "key"], ascending=[True, False, True, True])
    top = g.drop_duplicates("question_id")
    second = g[g.duplicated("question_id")].drop_duplicates("question_id").set_index("question_id")["votes"]
    ties = int((top.set_index("question_id")["votes"] == second.reindex(top["question_id"]).values).sum())
    plurality_right = int((top["right"] > 0.5).sum())
    oracle = d.groupby("question_id")["correct"].max()
    return {
        "n_questions": len(common), "n_models": int(n_models),
        "n_rows_dropped": int(len(df) - len(d)),
        "models": [{"model": m, "n": int((d["model"] == m).sum()), "accuracy": float(a)} for m, a in acc.items()],
        "plurality": {"accuracy": plurality_right / max(len(common), 1), "ties": ties,
                      "tie_rule": "most accurate model's answer, then lexicographic"},
        "oracle": {"accuracy": float(oracle.mean()) if len(oracle) else 0.0},
    }


def handle_inspect(args: argparse.Namespace) -> int:
    summary = {"file": str(args.file), **summarize(read_table(args.file))}
    print(f"{summary['file']}: {summary['n_questions']} questions answered by all {summary['n_models']} models"
          + (f" ({summary['n_rows_dropped']} rows on other questions left out)" if summary["n_rows_dropped"] else ""))
    width = max(len(m["model"]) for m in summary["models"])
    print(f"{'model':<{width}}  accuracy")
    for m in summary["models"]:
        print(f"{m['model']:<{width}}  {100 * m['accuracy']:6.2f}%")
    pl = summary["plurality"]
    print(f"{'plurality vote':<{width}}  {100 * pl['accuracy']:6.2f}%   ({pl['ties']} ties; {pl['tie_rule']})")
    print(f"{'oracle (any right)':<{width}}  {100 * summary['oracle']['accuracy']:6.2f}%")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.json_out}")
    return 0
