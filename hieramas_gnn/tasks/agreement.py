"""Check this project's extractors against graded real model outputs in ../shared/data.

- GSM8K: the full replies of 40+ models (`outcomes/raw/gsm8k_zeroeval_outputs.jsonl.gz`) graded
  by `GSM8KTask.score`, compared with the `correct` column of `outcomes/gsm8k_zeroeval.csv.gz`.
- MMLU-Redux: the letter each model emitted (`answer` column of `mmlu_redux_helm14.csv.gz`)
  graded by `MMLUTask.score` against the gold, compared with the `correct` column.

Each disagreement is labelled with a cause (see `_gsm8k_cause`). Used by
`scripts/check_extractors.py` and by the shared-data tests.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from hieramas_gnn.tasks import get_task


def _csv_rows(path: Path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def gsm8k_agreement(root: Path) -> dict[str, Any]:
    """Agreement of GSM8K extractor + scorer with the reference `correct` column."""
    task = get_task("gsm8k")
    questions = {q.id: q for q in task.load(str(root / "benchmarks" / "gsm8k_test.jsonl"))}
    replies = {}
    with gzip.open(root / "outcomes" / "raw" / "gsm8k_zeroeval_outputs.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            replies[(row["question_id"], row["model"])] = row["output"]
    n, disagreements = 0, []
    for row in _csv_rows(root / "outcomes" / "gsm8k_zeroeval.csv.gz"):
        q = questions[row["question_id"]]
        reply = replies[(row["question_id"], row["model"])]
        score = task.score(reply, q)
        n += 1
        if int(score.correct) != int(row["correct"]):
            disagreements.append({
                "question_id": q.id, "model": row["model"], "gold": q.gold, "reference_answer": row["answer"],
                "reference_parse": row["parse"], "reference_correct": int(row["correct"]),
                "ours": score.extracted, "cause": _gsm8k_cause(reply, row), "reply_tail": reply[-300:],
            })
    return _summary("gsm8k", n, disagreements)


def _gsm8k_cause(reply: str, row: dict) -> str:
    """Why the reference (first number of the first JSON answer) and this extractor differ."""
    if len(re.findall(r'"answer"\s*:', reply)) > 1:
        return "several JSON answers (a later correction); reference reads the first, we read the last"
    if row["parse"] == "json" and re.search(r"[=+*/×]|\d\s*-\s*\d", row["answer"]):
        return "answer is an expression; reference takes its first number, we take the result after '='"
    if row["parse"] == "json":
        return "answer text holds several numbers or a malformed JSON answer; the two rules pick different ones"
    if row["parse"] == "none":
        return "no answer found by the reference (truncated reply); we take the last number"
    return "no JSON answer; the fallback rules (regex / boxed / last number) pick different numbers"


def mmlu_redux_agreement(root: Path) -> dict[str, Any]:
    """Agreement of MMLU letter extraction + scoring with the reference `correct` column."""
    task = get_task("mmlu_redux")
    questions = {q.id: q for q in task.load(str(root / "outcomes" / "mmlu_redux_questions.jsonl"))}
    n, disagreements = 0, []
    for row in _csv_rows(root / "outcomes" / "mmlu_redux_helm14.csv.gz"):
        q = questions[row["question_id"]]
        score = task.score(row["answer"], q)
        n += 1
        if int(score.correct) != int(row["correct"]):
            cause = ("model emitted the text of a choice, not its letter; we map it to that letter, "
                     "the reference counts only letters")
            if score.extracted is None or not any(c.strip().lower() == row["answer"].strip().lower()
                                                  for c in q.meta["choices"]):
                cause = "other"
            disagreements.append({"question_id": q.id, "model": row["model"], "gold": q.gold,
                                  "emitted": row["answer"], "reference_correct": int(row["correct"]),
                                  "ours": score.extracted, "cause": cause})
    return _summary("mmlu_redux", n, disagreements)


def _summary(name: str, n: int, disagreements: list[dict]) -> dict[str, Any]:
    return {
        "task": name, "n": n, "agree": n - len(disagreements),
        "agreement": (n - len(disagreements)) / n if n else 0.0,
        "causes": dict(Counter(d["cause"] for d in disagreements).most_common()),
        "disagreements": disagreements,
    }
