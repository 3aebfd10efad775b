"""GSM8K: grade-school math word problems with an integer answer.

Source: `benchmarks/gsm8k_test.jsonl` (`question`, `answer` = CoT then `#### <number>`), ids
`gsm8k/test/<line>`; or `hf:openai/gsm8k` (config `main`). Extraction, first rule that fires:
JSON `{"answer": ...}` -> `#### X` -> `\\boxed{X}` -> `answer is X` / `Answer: X` -> the last
number in the reply. An explicit JSON / `####` answer without a number (`"Cannot be determined"`)
means no answer: the number is not fished out of the reasoning. From the answer text the stated
number is taken (after the last `=`, else the first number), with `$`, commas, units and
trailing zeros removed (`$1,200.00 dollars` -> `1200`). Correct when numerically equal to gold.
"""

from __future__ import annotations

import re

from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.answers import json_answer, last_boxed, number_from_answer, numbers_equal, numbers_in
from hieramas_gnn.tasks.base import BaseTask, Question, read_rows, take

_HASH_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"(?i:answer)\s*(?:is|:|=)\s*:?\s*([^\n]*)")


def gold_from_solution(solution: str) -> str:
    """The number after `####` in a GSM8K reference solution, canonicalised."""
    m = _HASH_RE.findall(solution)
    num = number_from_answer(m[-1]) if m else None
    if num is None:
        raise ValueError(f"no '#### <number>' in GSM8K solution: {solution[-80:]!r}")
    return num


def extract_number(text: str) -> str | None:
    """The final numeric answer of a GSM8K-style reply, canonicalised (see module docstring)."""
    if not text:
        return None
    explicit = json_answer(text) or _last(_HASH_RE, text)
    if explicit:  # an explicit final answer with no number in it ("Cannot be determined") is no answer
        return number_from_answer(explicit)
    for candidate in (last_boxed(text), _last(_ANSWER_IS_RE, text)):
        if candidate:
            num = number_from_answer(candidate)
            if num is not None:
                return num
    nums = numbers_in(text)
    return nums[-1] if nums else None


def _last(pattern: re.Pattern, text: str) -> str | None:
    found = [s for s in pattern.findall(text) if s.strip()]
    return found[-1] if found else None


class GSM8KTask(BaseTask):
    """GSM8K test (1319 items); `meta["difficulty"]` = number of calculator steps in the solution."""

    name = "gsm8k"
    family = "gsm8k"
    answer_kind = "number"

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        rows = read_rows(path, shared_data_dir() / "benchmarks" / "gsm8k_test.jsonl", self.name, split, hf_config="main")
        return take((self._question(i, row, split) for i, row in enumerate(rows)), limit)

    def _question(self, i: int, row: dict, split: str) -> Question:
        solution = row["answer"]
        return Question(
            id=row.get("question_id", f"gsm8k/{split}/{i}"),
            task=self.name,
            text=row["question"],
            gold=gold_from_solution(solution),
            meta={"domain": "arithmetic", "difficulty": max(1, solution.count("<<")), "split": split,
                  "solution": solution},
        )

    def instruction(self) -> str:
        return "Solve the problem step by step. End your reply with the final number on its own line as: #### <number>"

    def extract(self, response: str, question: Question) -> str | None:
        return extract_number(response)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return numbers_equal(extracted, str(question.gold))

    def render_answer(self, answer: str, question: Question) -> str:
        return f"Working through the quantities in the problem step by step gives the result.\n#### {answer}"
