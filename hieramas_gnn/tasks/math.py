"""MATH-500 and MATH level-5: competition math with a LaTeX final answer.

Sources: `benchmarks/math500_test.jsonl` (ids `math500/<unique_id without .json>`, subject and
level in `meta`) and `outcomes/math_l5_questions.jsonl` (ids `math_l5/<n>`, level 5), or
`hf:NAME[:CONFIG]` with `problem` and `answer` (or `solution`) columns.
Extraction: a JSON `{"answer": ...}` reply (its `\\boxed{}` if it has one), else the last
`\\boxed{}`, else `final answer is ...` / `answer is ...`. Grading: `math_equiv.math_equal`.
"""

from __future__ import annotations

import re

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.answers import json_answer, last_boxed
from hieramas_gnn.tasks.base import BaseTask, Question, read_rows, take
from hieramas_gnn.tasks.math_equiv import math_equal

_DEFAULTS = {"math500": ("benchmarks", "math500_test.jsonl"), "math_l5": ("outcomes", "math_l5_questions.jsonl")}
_FINAL_RE = re.compile(r"(?i:final answer|answer)\s*(?:is|:)\s*:?\s*(.+)")


def extract_math_answer(text: str) -> str | None:
    """The final answer of a MATH reply (see module docstring); surrounding `$` and `.` removed."""
    if not text:
        return None
    js = json_answer(text)
    if js:
        return _clean(last_boxed(js) or js)
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    finals = _FINAL_RE.findall(text)
    if finals:
        line = finals[-1].strip()
        m = re.search(r"\$([^$]+)\$", line)
        return _clean(m.group(1) if m else line)
    return None


def _clean(s: str) -> str | None:
    s = s.strip().strip("$").strip()
    s = re.sub(r"[.\s]+$", "", s)
    return s or None


class MathTask(BaseTask):
    """MATH-500 (`name="math500"`) or the MATH level-5 numeric subset (`name="math_l5"`)."""

    family = "math"
    answer_kind = "latex"

    def __init__(self, name: str = "math500") -> None:
        super().__init__()
        if name not in _DEFAULTS:
            raise UserError(f"MathTask name must be one of {sorted(_DEFAULTS)}, got {name!r}")
        self.name = name

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        folder, fname = _DEFAULTS[self.name]
        rows = read_rows(path, shared_data_dir() / folder / fname, self.name, split)
        return take((self._question(i, dict(row), split) for i, row in enumerate(rows)), limit)

    def _question(self, i: int, row: dict, split: str) -> Question:
        gold = row.get("answer")
        if gold is None and "solution" in row:
            gold = last_boxed(row["solution"])
        subject = row.get("subject") or row.get("type")
        if not subject and row.get("math500_unique_id"):  # `test/<subject>/<n>.json`
            subject = row["math500_unique_id"].split("/")[1]
        meta = {"domain": _domain(subject), "split": split}
        level = row.get("level", 5 if self.name == "math_l5" else None)
        if isinstance(level, str):
            m = re.search(r"\d", level)
            level = int(m.group(0)) if m else None
        if level is not None:
            meta["difficulty"] = int(level)
        for key in ("subject", "unique_id", "zeroeval_id", "math500_unique_id"):
            if row.get(key) is not None:
                meta[key] = row[key]
        if "question_id" in row:
            qid = row["question_id"]
        elif "unique_id" in row:
            qid = f"{self.name}/{re.sub(r'[.]json$', '', row['unique_id'])}"
        else:
            qid = f"{self.name}/{i}"
        return Question(id=qid, task=self.name, text=row["problem"], gold=str(gold), meta=meta)

    def instruction(self) -> str:
        return "Solve the problem step by step. Put the final answer, simplified, in \\boxed{}."

    def extract(self, response: str, question: Question) -> str | None:
        return extract_math_answer(response)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return math_equal(extracted, str(question.gold))

    def render_answer(self, answer: str, question: Question) -> str:
        return f"Simplifying step by step leads to the result.\nThe final answer is $\\boxed{{{answer}}}$."


def _domain(subject: str | None) -> str:
    """`Intermediate Algebra` -> `intermediate_algebra`; `math` when unknown."""
    return re.sub(r"\W+", "_", subject.strip().lower()) if subject else "math"
