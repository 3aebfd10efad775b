"""Recorded-outcome tasks: benchmark slices known only through real models' recorded outcomes.

RouterDC (`outcomes/routerdc_7models.*`) and RouterBench (`outcomes/routerbench_subset.*`) give,
per question and model, a score (RouterDC: a sampled pass rate or a multiple-choice verdict) or a
verdict plus the real reply (RouterBench), but no gold answers for most items. These tasks
therefore grade **outcome labels**: a replayed model's reply ends in `Answer: <label>`, and the
label is the question's `gold` exactly when the recorded outcome was right. They are replay-only
(a real provider's reply is never graded right); the replay backend (`backends/recorded.py`)
draws the labels from the tables.

Labels (`gold`):

- RouterBench multiple choice (ARC-Challenge, Winogrande): the real option letters. The models'
  replies are letters (`A`, `B)`...); the gold is the letter every model graded right gave (the
  letters agree with the recorded verdicts on all 30,107 rows); a question no model got right has
  the gold `NO_RECORDED_ANSWER`, which no reply carries.
- Everything else (RouterDC's MMLU / ARC / GSM8K / HumanEval / MATH prealgebra / MBPP, RouterBench
  MBPP): the gold is `RIGHT` (`right`); wrong replies carry `wrong-<k>` labels (how they are drawn
  is the replay's documented assumption, docs/MIXED_TASKS.md).

Splits: `train` and `test` are the authors' files (RouterDC: `<bench>_train` / `<bench>_test`;
RouterBench: the `routerdc_split` column); MATH prealgebra and MBPP of RouterDC are test only
(its out-of-distribution files). `meta`: `domain` (the benchmark's short name), `component`
(the task name), `options` (number of options, 0 for open answers), `score_type`, `split`.
The files have no license: they are read from `../shared/data` at run time, never copied.
"""

from __future__ import annotations

import gzip
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.base import BaseTask, Question, read_jsonl, take
from hieramas_gnn.tasks.generic import answer_line, normalise

RIGHT = "right"
NO_RECORDED_ANSWER = "no-recorded-right-answer"
SPLITS = ("train", "test")
ROUTERDC_TABLE = "outcomes/routerdc_7models.csv.gz"
ROUTERDC_QUESTIONS = "outcomes/routerdc_7models_questions.jsonl.gz"
ROUTERBENCH_TABLE = "outcomes/routerbench_subset.csv.gz"
ROUTERBENCH_PROMPTS = "outcomes/routerbench_subset_prompts.jsonl.gz"
_LETTER = re.compile(r"^\s*\(?([A-Z])(?:\)|\.|:|\s|$)")


@dataclass(frozen=True)
class RecordedSpec:
    """One recorded benchmark slice.

    name:      task name (`routerdc_gsm8k`, `routerbench_arc`, ...).
    source:    `routerdc` or `routerbench`.
    domain:    short benchmark name, the questions' `meta["domain"]` (`gsm8k`, `arc`, ...).
    files:     split -> the source's file names (RouterDC `routerdc_file`) or, for RouterBench,
               the prompts' `eval_name` (both splits come from `routerdc_split`).
    options:   number of answer options (4: MMLU / ARC, 2: Winogrande), 0 for open answers.
    real_letters: RouterBench multiple choice: labels are the real option letters.
    about:     one line for `hieramas tasks list/show`.
    """

    name: str
    source: str
    domain: str
    files: tuple[tuple[str, tuple[str, ...]], ...]
    options: int
    real_letters: bool = False
    about: str = ""

    def files_of(self, split: str) -> tuple[str, ...]:
        return dict(self.files).get(split, ())


def _dc(name: str, domain: str, train: str | None, test: str, options: int, about: str) -> RecordedSpec:
    files = ((("train", (train,)),) if train else ()) + (("test", (test,)),)
    return RecordedSpec(name, "routerdc", domain, files, options, False, about)


def _rb(name: str, domain: str, eval_name: str, options: int, about: str) -> RecordedSpec:
    return RecordedSpec(name, "routerbench", domain, (("train", (eval_name,)), ("test", (eval_name,))),
                        options, options > 0, about)


SPECS: dict[str, RecordedSpec] = {s.name: s for s in (
    _dc("routerdc_mmlu", "mmlu", "mmlu_train", "mmlu_test", 4, "RouterDC MMLU (5-shot log-likelihood, option right)"),
    _dc("routerdc_gsm8k", "gsm8k", "gsm8k-train", "gsm8k-test", 0, "RouterDC GSM8K (pass rate of 10 samples)"),
    _dc("routerdc_arc", "arc", "arc_challenge_train", "arc_challenge_test", 4,
        "RouterDC ARC-Challenge (log-likelihood, option right)"),
    _dc("routerdc_humaneval", "humaneval", "humaneval_train", "humaneval_test", 0,
        "RouterDC HumanEval (pass rate of 10 samples)"),
    _dc("routerdc_math_prealgebra", "math_prealgebra", None, "MATH_prealgebra", 0,
        "RouterDC MATH prealgebra (out of distribution; right or wrong)"),
    _dc("routerdc_mbpp", "mbpp", None, "mbpp", 0, "RouterDC MBPP (out of distribution; pass rate of 10 samples)"),
    _rb("routerbench_arc", "arc", "arc-challenge", 4, "RouterBench ARC-Challenge (0-shot, real letters and costs)"),
    _rb("routerbench_winogrande", "winogrande", "winogrande", 2, "RouterBench Winogrande (real letters and costs)"),
    _rb("routerbench_mbpp", "mbpp", "mbpp", 0, "RouterBench MBPP (real replies and costs)"),
)}


def letter_of(reply: str | None, options: int) -> str | None:
    """The option letter a reply starts with (`A`, `(B)`, `C) text`), within the first `options`."""
    m = _LETTER.match(reply or "")
    if m and m.group(1) in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:options]:
        return m.group(1)
    return None


def question_text(prompt: str) -> str:
    """A RouterBench prompt without its few-shot examples: its last blank-line separated block."""
    blocks = [b for b in prompt.strip().split("\n\n") if b.strip()]
    return blocks[-1].strip() if blocks else prompt.strip()


@lru_cache(maxsize=2)
def routerbench_gold(shared: str) -> dict[str, str]:
    """question_id -> the letter the models graded right gave (multiple-choice slices only)."""
    import csv

    gold: dict[str, str] = {}
    with gzip.open(Path(shared) / ROUTERBENCH_TABLE, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["benchmark"] == "mbpp" or row["correct"].strip() not in ("1", "1.0", "True", "true"):
                continue
            letter = letter_of(row["response"], 26)
            if letter is not None:
                gold.setdefault(row["question_id"], letter)
    return gold


class RecordedTask(BaseTask):
    """One recorded benchmark slice (module docstring); `spec` says which."""

    family = "general"
    answer_kind = "text"

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in SPECS:
            raise UserError(f"unknown recorded task {name!r} (known: {', '.join(SPECS)})")
        self.spec = SPECS[name]
        self.name = name
        self._splits: dict[str, list[Question]] = {}
        self._load_lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k not in ("_splits", "_load_lock")}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._splits, self._load_lock = {}, threading.Lock()

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this slice has (`train` and `test`, or only `test`)."""
        return tuple(s for s in SPLITS if self.spec.files_of(s))

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        """The questions of `split` (`train` or `test`, the authors' files), in file order."""
        if path is not None:
            raise UserError(f"task {self.name}: a recorded-outcome task reads ../shared/data only (got path {path!r})")
        if split not in SPLITS:
            raise UserError(f"task {self.name}: split must be one of {', '.join(SPLITS)}, got {split!r}")
        with self._load_lock:
            if split not in self._splits:
                self._splits[split] = self._read(split)
        return take(self._splits[split], limit)

    def get(self, question_id: str) -> Question:
        """A question of any split by id."""
        with self._index_lock:
            if self._index is None:
                self._index = {q.id: q for s in self.splits for q in self.load(split=s)}
        try:
            return self._index[question_id]
        except KeyError:
            raise UserError(f"unknown question id {question_id!r} for task {self.name!r}") from None

    def _read(self, split: str) -> list[Question]:
        files = self.spec.files_of(split)
        if not files:
            return []
        shared = shared_data_dir()
        if self.spec.source == "routerdc":
            rows = (r for r in read_jsonl(shared / ROUTERDC_QUESTIONS) if r["routerdc_file"] in files)
            return [self._question(r["question_id"], str(r["question"]), split, RIGHT) for r in rows]
        gold = routerbench_gold(str(shared)) if self.spec.real_letters else {}
        out = []
        for r in read_jsonl(shared / ROUTERBENCH_PROMPTS):
            if r["eval_name"] in files and r["routerdc_split"] == split:
                answer = gold.get(r["question_id"], NO_RECORDED_ANSWER) if self.spec.real_letters else RIGHT
                out.append(self._question(r["question_id"], question_text(str(r["prompt"])), split, answer))
        return out

    def _question(self, qid: str, text: str, split: str, gold: str) -> Question:
        meta: dict[str, Any] = {"domain": self.spec.domain, "component": self.name, "options": self.spec.options,
                                "source": self.spec.source, "split": split}
        if qid.startswith("mmlu/"):
            meta["subject"] = qid.split("/")[1]
        return Question(id=qid, task=self.name, text=text.strip(), gold=gold, meta=meta)

    def instruction(self) -> str:
        if self.spec.real_letters:
            return "End your reply with the letter of the correct option on its own line as: Answer: <letter>"
        return "End your reply with the final answer on its own line as: Answer: <answer>"

    def extract(self, response: str, question: Question) -> str | None:
        line = answer_line(response or "")
        if line is None:
            return None
        if self.spec.real_letters:
            return letter_of(line, self.spec.options)
        return normalise(line) or None

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return extracted is not None and normalise(extracted) == normalise(question.gold)

    def render_answer(self, answer: str, question: Question) -> str:
        return f"Answer: {answer}"


__all__ = ["NO_RECORDED_ANSWER", "RIGHT", "SPECS", "RecordedSpec", "RecordedTask", "letter_of", "question_text"]
