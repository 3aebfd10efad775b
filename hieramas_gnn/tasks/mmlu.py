"""MMLU and MMLU-Redux: four-option multiple choice over 57 subjects.

Sources: `benchmarks/mmlu_test.jsonl` (14,042 items, ids `mmlu/<subject>/<i>`) and
`outcomes/mmlu_redux_questions.jsonl` (5,700 items, same ids where matched, with the Redux
`error_type` annotation in `meta`), or `hf:NAME[:CONFIG]` (e.g. `hf:cais/mmlu:all`).
`load(..., only_ok=True)` keeps only Redux items annotated `ok` (the others have a doubtful gold).
Extraction (`answers.choice_letter`): JSON answer, the last `answer is (B)` / `Answer: B` /
`\\boxed{B}`, a reply that is only a letter, a reply that starts with `B.` / `(B)`, the only `(X)`
in the reply, or a reply equal to one choice's text.
"""

from __future__ import annotations

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.answers import choice_letter, letters_for
from hieramas_gnn.tasks.base import BaseTask, Question, read_rows, take

_DEFAULTS = {
    "mmlu": ("benchmarks", "mmlu_test.jsonl"),
    "mmlu_redux": ("outcomes", "mmlu_redux_questions.jsonl"),
}


def format_question(question: str, choices: list[str]) -> str:
    """Question text followed by lettered choices, one per line (`A. ...`)."""
    lines = [question.strip(), ""]
    lines += [f"{letter}. {choice}" for letter, choice in zip(letters_for(len(choices)), choices)]
    return "\n".join(lines)


class MMLUTask(BaseTask):
    """MMLU (`name="mmlu"`) or MMLU-Redux (`name="mmlu_redux"`)."""

    family = "mmlu"
    answer_kind = "choice"

    def __init__(self, name: str = "mmlu") -> None:
        super().__init__()
        if name not in _DEFAULTS:
            raise UserError(f"MMLUTask name must be one of {sorted(_DEFAULTS)}, got {name!r}")
        self.name = name

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None,
             only_ok: bool = False) -> list[Question]:
        folder, fname = _DEFAULTS[self.name]
        rows = read_rows(path, shared_data_dir() / folder / fname, self.name, split)
        questions = (self._question(i, dict(row), split) for i, row in enumerate(rows))
        if only_ok:
            questions = (q for q in questions if q.meta.get("error_type", "ok") == "ok")
        return take(questions, limit)

    def _question(self, i: int, row: dict, split: str) -> Question:
        choices = [str(c) for c in row["choices"]]
        letters = letters_for(len(choices))
        gold = row.get("answer", row.get("groundtruth_answer"))
        if isinstance(gold, int) or (isinstance(gold, str) and gold.isdigit()):
            gold = letters[int(gold)]
        subject = row.get("subject") or "unknown"
        meta = {"domain": subject, "subject": subject, "choices": choices, "split": split}
        for key in ("error_type", "redux_index", "in_mmlu_test"):
            if key in row:
                meta[key] = row[key]
        return Question(
            id=row.get("question_id") or f"{self.name}/{subject}/{i}",
            task=self.name,
            text=format_question(str(row["question"]), choices),
            gold=str(gold).strip().upper(),
            meta=meta,
        )

    def instruction(self) -> str:
        return "Think it through, then end your reply with: The answer is (X), where X is the letter of your choice."

    def extract(self, response: str, question: Question) -> str | None:
        choices = question.meta.get("choices") or []
        return choice_letter(response, letters_for(len(choices) or 4), choices)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return extracted is not None and extracted.strip().upper() == question.gold

    def render_answer(self, answer: str, question: Question) -> str:
        choices = question.meta.get("choices") or []
        letters = letters_for(len(choices) or 4)
        idx = letters.find(answer) if len(answer) == 1 else -1
        because = f" The option \"{choices[idx]}\" fits best." if 0 <= idx < len(choices) else ""
        return f"Let me weigh each option against the question.{because}\nThe answer is ({answer})."
