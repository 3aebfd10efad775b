"""Replayed outcomes of the recorded-outcome slices (`tasks/recorded.py`): RouterDC and RouterBench.

`RecordedOutcomes(task)` offers what `replay.OutcomeTable` offers (`get`, `raw`, `accuracy`,
`models`) for one slice, read from `../shared/data/outcomes/` at run time (no license: never
copied). What a replayed call answers (`get(model, question_id, sample)`):

- **Pass rates** (RouterDC GSM8K, HumanEval, MBPP: `pass_rate_sampled`, k of 10 sampled
  generations right): the call with sample index s reads generation g(s) of the 10, right for k of
  them (which ones: a fixed permutation per model and question, from their names). g(s) =
  (s mod 16 + s div 16) mod 10 — the executor gives run r's calls the indices 16·r + o (o counts
  repeats of a model in a mixture), so runs 0..9 and the repeats within a run read distinct
  generations. The mean over 10 runs (or 10 samples) is exactly the recorded pass rate, the accuracy
  RouterDC reports; one run is an unbiased draw of it.
- **Multiple-choice verdicts** (RouterDC MMLU / ARC: right when the gold option had the highest
  log-likelihood; MATH prealgebra: right or wrong): the recorded verdict, every sample alike
  (the models were scored deterministically).
- **RouterBench**: the recorded verdict and the model's real reply; multiple-choice answers are the
  real option letters the models gave (so votes see the real agreement), MBPP answers are labels.
  `cost_usd` is the recorded `total_cost_usd` of that model on that question.

Answers where the table has no answer text (the documented assumption, docs/MIXED_TASKS.md):
a right answer is the question's gold label; a wrong one, with `wrong_answers: distinct` (default),
is a wrong option drawn uniformly at random per (model, question) for 4-option multiple choice
(from their names: wrong models agree by chance, 1 in 3) and a label of its own per (model,
generation) for open answers (two wrong programs or numbers never agree); with `wrong_answers:
shared` every wrong answer to a question is the same label (the worst case for votes).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import DataMissingError, UserError
from hieramas_gnn.tasks.recorded import (
    ROUTERBENCH_TABLE,
    ROUTERDC_TABLE,
    RecordedTask,
    letter_of,
)



def missing_outcome(model: str, qid: str, task: str, tables: Any, known: Any, models: list[str]) -> UserError:
    """The error of a replay lookup that found no row: an unknown model, or a question the model
    has no recorded outcome for (`known`: the models the tables hold)."""
    if model not in known:
        return UserError(f"replay: unknown model {model!r} for task {task} "
                         f"(table {', '.join(p.name for p in tables)}; known: {', '.join(models)})")
    return UserError(f"replay: model {model!r} has no outcome for question {qid!r} (task {task})")

@dataclass(frozen=True)
class Outcome:
    """One replayed outcome of a model on a question (any table: `replay.OutcomeTable` too)."""

    answer: str | None
    correct: bool
    output_chars: int | None
    cost_usd: float | None = None  # the recorded cost of this call, where the table has one


GENERATIONS = 10  # RouterDC's sampled generations per question (pass rates are k / 10)
SAMPLE_STRIDE = 16  # mas/supernode.MAX_REPEATS: run r's calls have sample indices 16 r + o
WRONG_ANSWERS = ("distinct", "shared")


@lru_cache(maxsize=2)
def read_table(path: str):
    """A recorded table as a DataFrame, read once per process (the slices share one file)."""
    import pandas as pd

    return pd.read_csv(path, dtype={"question_id": str, "model": str}, keep_default_na=False)


def _unit(*parts: Any) -> int:
    """A stable 64-bit integer from `parts` (no process-dependent hashing)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def generation(sample: int) -> int:
    """Which of the 10 recorded generations a call with this sample index reads."""
    return (sample % SAMPLE_STRIDE + sample // SAMPLE_STRIDE) % GENERATIONS


def right_generations(model: str, qid: str, k: int) -> frozenset[int]:
    """The k generations (of 10) that are right: a fixed permutation from the names."""
    order = sorted(range(GENERATIONS), key=lambda g: _unit("generation", model, qid, g))
    return frozenset(order[:k])


class RecordedOutcomes:
    """One recorded slice's outcomes, indexed by (model, question_id), loaded on first use."""

    def __init__(self, task: RecordedTask, shared: Path, wrong_answers: str = "distinct") -> None:
        if wrong_answers not in WRONG_ANSWERS:
            raise UserError(f"backend.replay.wrong_answers must be one of {', '.join(WRONG_ANSWERS)}, "
                            f"got {wrong_answers!r}")
        self.task, self.shared, self.wrong_answers = task, Path(shared), wrong_answers
        self.tables = [self.shared / (ROUTERDC_TABLE if task.spec.source == "routerdc" else ROUTERBENCH_TABLE)]
        self._rows: dict[tuple[str, str], tuple] | None = None
        self._lock = threading.Lock()
        self.accuracy: dict[str, float] = {}  # mean recorded score per model (its strength)

    def _load(self) -> dict[tuple[str, str], tuple]:
        with self._lock:
            if self._rows is None:
                path = self.tables[0]
                if not path.exists():
                    raise DataMissingError(f"replay: outcome table {path} not found (task {self.task.name})")
                ids = {q.id for s in self.task.splits for q in self.task.load(split=s)}
                df = read_table(str(path))
                df = df[df["question_id"].isin(ids)]
                if self.task.spec.source == "routerdc":
                    df = df[df["routerdc_file"].isin([f for _, fs in self.task.spec.files for f in fs])]
                    score = df["score"].astype(float)
                    sampled = df["score_type"] == "pass_rate_sampled"
                    rights = (score * GENERATIONS).round().astype(int).where(sampled, -1)
                    value = score.where(sampled, df["correct"].astype(float))
                    self._rows = {(m, q): (int(r), bool(c), None, None, None) for m, q, r, c in
                                  zip(df["model"], df["question_id"], rights, df["correct"].astype(int))}
                else:
                    value = df["correct"].astype(float)
                    self._rows = {(m, q): (-1, bool(c), str(t), float(cost), len(str(t))) for m, q, c, t, cost in
                                  zip(df["model"], df["question_id"], df["correct"].astype(int), df["response"],
                                      df["total_cost_usd"].astype(float))}
                self.accuracy = {str(m): float(v) for m, v in value.groupby(df["model"]).mean().items()}
                self._model_index = {m: i for i, m in enumerate(sorted(self.accuracy))}
        return self._rows

    def models(self) -> list[str]:
        self._load()
        return sorted(self.accuracy)

    def _row(self, model: str, qid: str) -> tuple:
        row = self._load().get((model, qid))
        if row is None:
            raise missing_outcome(model, qid, self.task.name, self.tables, self.accuracy, self.models())
        return row

    def get(self, model: str, qid: str, sample: int = 0):
        """The replayed `Outcome` of `model` on `qid` for this sample index (module docstring)."""
        rights, verdict, reply, cost, chars = self._row(model, qid)
        q = self.task.get(qid)
        if rights >= 0:  # a pass rate: this sample's generation
            g = generation(sample)
            correct = g in right_generations(model, qid, rights)
        else:
            g, correct = 0, verdict
        if correct:
            answer = str(q.gold)
        elif self.task.spec.real_letters:
            answer = letter_of(reply, self.task.spec.options)  # the real (wrong) letter, or none
        else:
            answer = self._wrong(model, qid, g)
        return Outcome(answer, correct, chars, cost)

    def _wrong(self, model: str, qid: str, g: int) -> str:
        if self.wrong_answers == "shared":
            return "wrong-1"
        options = self.task.spec.options
        if options > 1:  # a wrong option, uniform per (model, question)
            return f"wrong-{1 + _unit('option', model, qid) % (options - 1)}"
        return f"wrong-m{self._model_index[model]}-g{g}"

    def expected(self, model: str, qid: str) -> tuple[float, float | None]:
        """(expected accuracy of one call: the pass rate, else the verdict; recorded cost or None):
        the figures the published tables report, without sampling."""
        rights, verdict, _, cost, _ = self._row(model, qid)
        return (rights / GENERATIONS if rights >= 0 else float(verdict)), cost

    def raw(self, model: str, qid: str) -> str | None:
        """The model's real reply (RouterBench), None where the table has none."""
        return self._row(model, qid)[2]

