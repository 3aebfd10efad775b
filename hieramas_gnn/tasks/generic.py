"""A task from a question file and a scorer name: bring your own dataset with no code.

The file is a `.jsonl` (or `.jsonl.gz`), one question per line:

    {"question": "What is the capital of France?", "answer": "Paris"}
    {"id": "q2", "domain": "geo", "question": "Largest ocean?", "answer": "Pacific"}
    {"question": "2 + 2 = ?", "choices": ["3", "4", "5"], "answer": "B"}

`question` and `answer` are required; `id` (default `<task>/<line index>`), `domain` (default
`general`; the policy's query features and the sim backend's ability lookup use it) and
`choices` (a list of option texts, shown lettered A, B, ...) are optional. `answer` is one
value (a string or a number); the sim backend answers with it when it simulates a right answer.

Scorers (`task.scorer` in the config), each with the same reply contract: the model ends its
reply with a line `Answer: <answer>`.

- `exact`:            the answer text after `Answer:` (or the whole reply when it is one line)
                      equals the gold, ignoring case, surrounding quotes/markdown, a final period
                      and repeated spaces.
- `numeric`:          the number stated in the answer equals the gold number (relative
                      tolerance 1e-6; `$1,200.00` = `1200`).
- `choice`:           needs `choices`; the chosen letter equals the gold letter. A gold may be
                      given as a letter, a 0-based index, or the text of one of the choices.
- `regex:PATTERN`:    the answer is the last match of PATTERN in the reply (its first group when
                      it has groups), compared like `exact`.
- `module:function`:  your grader, `function(answer: str, question: Question) -> bool`, called on
                      the text after `Answer:` (`question.gold` is the row's `answer`); the module
                      must be importable (installed, or on PYTHONPATH).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks.answers import canonical_number, choice_letter, letters_for, number_from_answer, numbers_equal
from hieramas_gnn.tasks.base import BaseTask, Question, read_jsonl, take

SCORER_NAMES = ("exact", "numeric", "choice", "regex:PATTERN", "module:function")
_ANSWER_LINE = re.compile(r"^[ \t>*_#`]*answer[*_`]*[ \t]*[:：][ \t]*(.+?)[ \t]*$", re.I | re.M)
_ROW_KEYS = {"id", "question", "answer", "domain", "choices"}


def normalise(text: str) -> str:
    """Case-folded, spaces collapsed, quotes/markdown and a final period stripped."""
    s = " ".join(str(text).split()).strip().strip("*_`\"'").strip()
    return s.rstrip(".").strip().casefold()


def answer_line(response: str) -> str | None:
    """The text after the last `Answer:` line; a one-line reply is its own answer; else None."""
    found = _ANSWER_LINE.findall(response or "")
    if found:
        return found[-1].strip().strip("*_`").strip() or None
    lines = [ln for ln in (response or "").strip().splitlines() if ln.strip()]
    return lines[0].strip() if len(lines) == 1 else None


class Scorer:
    """How one scorer name extracts and grades answers (the default: `exact`)."""

    spec = "exact"
    instruction = "End your reply with the final answer on its own line as: Answer: <answer>"

    def extract(self, response: str, q: Question) -> str | None:
        return answer_line(response)

    def is_correct(self, extracted: str | None, q: Question) -> bool:
        return extracted is not None and normalise(extracted) == normalise(q.gold)

    def render(self, answer: str, q: Question) -> str:
        return f"Answer: {answer}"


class NumericScorer(Scorer):
    spec = "numeric"
    instruction = "Work it out, then end your reply with the final number on its own line as: Answer: <number>"

    def extract(self, response: str, q: Question) -> str | None:
        line = answer_line(response)
        return number_from_answer(line) if line is not None else None

    def is_correct(self, extracted: str | None, q: Question) -> bool:
        return numbers_equal(extracted, str(q.gold))


class ChoiceScorer(Scorer):
    spec = "choice"
    instruction = "End your reply with the letter of the correct option on its own line as: Answer: <letter>"

    def extract(self, response: str, q: Question) -> str | None:
        choices = q.meta["choices"]
        return choice_letter(response or "", letters_for(len(choices)), choices)

    def is_correct(self, extracted: str | None, q: Question) -> bool:
        return extracted is not None and extracted.upper() == str(q.gold)


REGEX_TIMEOUT_S = 1.0
"""Longest a user pattern may take on one reply (the `regex` engine's timeout): a pattern with
catastrophic backtracking (`(a|aa)+$`) is stopped, not left to run for hours."""


class RegexScorer(Scorer):
    def __init__(self, pattern: str) -> None:
        import regex

        try:
            self.pattern = regex.compile(pattern, regex.M | regex.V0)
        except (regex.error, re.error) as exc:
            raise UserError(f"task.scorer regex:{pattern}: not a valid regular expression ({exc})") from None
        self.spec = f"regex:{pattern}"

    def extract(self, response: str, q: Question) -> str | None:
        try:
            hits = list(self.pattern.finditer(response or "", timeout=REGEX_TIMEOUT_S))
        except TimeoutError:
            raise UserError(f"task.scorer {self.spec}: matching one reply ({len(response or ''):,} characters) took "
                            f"more than {REGEX_TIMEOUT_S:g} s (catastrophic backtracking?); simplify the pattern, e.g. "
                            "avoid nested or overlapping repeats like (a|aa)+") from None
        if not hits:
            return None
        m = hits[-1]
        return (m.group(1) if self.pattern.groups else m.group(0)).strip() or None

    def render(self, answer: str, q: Question) -> str:
        """The first of a few reply shapes from which the pattern extracts `answer` again."""
        for text in (f"Answer: {answer}", str(answer), f"The answer is {answer}.", f"#### {answer}",
                     f"\\boxed{{{answer}}}", f"[{answer}]", f"<answer>{answer}</answer>"):
            got = self.extract(text, q)
            if got is not None and normalise(got) == normalise(answer):
                return text
        raise UserError(f"task.scorer {self.spec}: cannot write a reply the pattern reads back as "
                        f"{answer!r} (the sim/replay backends need one); use a pattern that matches "
                        "'Answer: <answer>'")


class CallableScorer(Scorer):
    def __init__(self, spec: str) -> None:
        module_name, _, attr = spec.partition(":")
        self.spec = spec
        self.fn: Callable[[str, Question], Any] = _import_callable(module_name, attr, spec)

    def is_correct(self, extracted: str | None, q: Question) -> bool:
        if extracted is None:
            return False
        verdict = self.fn(extracted, q)
        if not isinstance(verdict, (bool, int)):
            raise UserError(f"task.scorer {self.spec}: must return True/False, returned {type(verdict).__name__}")
        return bool(verdict)


def make_scorer(spec: str) -> Scorer:
    """The scorer named by `spec` (see the module docstring); unknown -> UserError listing them."""
    spec = str(spec).strip()
    if spec == "exact":
        return Scorer()
    if spec == "numeric":
        return NumericScorer()
    if spec == "choice":
        return ChoiceScorer()
    if spec.startswith("regex:"):
        return RegexScorer(spec[len("regex:"):])
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        return CallableScorer(spec)
    raise UserError(f"task.scorer: unknown scorer {spec!r} (one of: {', '.join(SCORER_NAMES)})")


def _import_callable(module_name: str, attr: str, spec: str) -> Callable:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"task.scorer {spec}: cannot import module {module_name!r} ({exc}); "
                        "install it or put its folder on PYTHONPATH") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"task.scorer {spec}: module {module_name!r} has no function {attr!r}")
    return fn


class GenericTask(BaseTask):
    """A user task: questions from `path`, graded by the scorer `scorer` (module docstring)."""

    family = "general"

    def __init__(self, name: str, path: str | Path, scorer: str = "exact",
                 rows: list[dict[str, Any]] | None = None) -> None:
        """`rows`: the file's rows themselves (a policy bundle carries its task's questions so it
        runs anywhere); then `path` only names where they came from."""
        super().__init__()
        if not name or "/" in name or ":" in name:
            raise UserError(f"task.name: a generic task needs a plain name (no '/' or ':'), got {name!r}")
        self.name, self.path = name, str(path)
        self.rows = list(rows) if rows is not None else None
        self.scorer = make_scorer(scorer)
        self.answer_kind = {"numeric": "number", "choice": "choice"}.get(self.scorer.spec, "text")

    def raw_rows(self) -> list[dict[str, Any]]:
        """The task's rows as read from its file (or as embedded): what a bundle carries."""
        return list(self.rows) if self.rows is not None else list(read_jsonl(self.path))

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        """All questions of the file (the file is the split: `split` only goes into meta)."""
        src = str(path) if path is not None else self.path
        rows = read_jsonl(src) if path is not None or self.rows is None else self.rows
        questions, seen = [], {}
        for i, row in enumerate(rows):
            q = self._question(i, row, src, split)
            if q.id in seen:
                raise UserError(f"{src}: question {i + 1}: duplicate id {q.id!r} (also question {seen[q.id] + 1})")
            seen[q.id] = i
            questions.append(q)
        if not questions:
            raise UserError(f"{src}: no questions")
        return take(questions, limit)

    def _question(self, i: int, row: Any, src: str, split: str) -> Question:
        where = f"{src}: question {i + 1}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object")
        unknown = sorted(set(row) - _ROW_KEYS)
        if unknown:
            raise UserError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_ROW_KEYS))})")
        for key in ("question", "answer"):
            if row.get(key) is None or (isinstance(row[key], str) and not row[key].strip()):
                raise UserError(f"{where}: field {key!r} is missing or empty")
        text, meta = str(row["question"]).strip(), {"domain": str(row.get("domain") or "general"), "split": split}
        gold: Any = row["answer"]
        if isinstance(gold, (list, dict)) or isinstance(gold, bool):
            raise UserError(f"{where}: field 'answer' must be one string or number")
        choices = row.get("choices")
        if choices is not None:
            if not isinstance(choices, list) or len(choices) < 2 or len(choices) > 26:
                raise UserError(f"{where}: field 'choices' must be a list of 2 to 26 option texts")
            choices = [str(c) for c in choices]
            letters = letters_for(len(choices))
            text += "\n\n" + "\n".join(f"{letters[j]}. {c}" for j, c in enumerate(choices))
            meta["choices"] = choices
        if self.scorer.spec == "choice":
            if choices is None:
                raise UserError(f"{where}: the choice scorer needs a 'choices' list")
            gold = _gold_letter(gold, choices, where)
        else:
            gold = str(gold)
            if self.scorer.spec == "numeric" and canonical_number(gold) is None:
                raise UserError(f"{where}: field 'answer' {gold!r} is not a number (the numeric scorer needs one)")
        qid = str(row["id"]) if row.get("id") not in (None, "") else f"{self.name}/{i}"
        return Question(id=qid, task=self.name, text=text, gold=gold, meta=meta)

    def instruction(self) -> str:
        return self.scorer.instruction

    def extract(self, response: str, question: Question) -> str | None:
        return self.scorer.extract(response, question)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return self.scorer.is_correct(extracted, question)

    def render_answer(self, answer: str, question: Question) -> str:
        return self.scorer.render(answer, question)

    def __repr__(self) -> str:
        held = f", rows={len(self.rows)}" if self.rows is not None else ""
        return f"GenericTask(name={self.name!r}, path={self.path!r}, scorer={self.scorer.spec!r}{held})"


def _gold_letter(gold: Any, choices: list[str], where: str) -> str:
    letters = letters_for(len(choices))
    if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(choices):
        return letters[gold]
    text = str(gold).strip()
    if len(text) == 1 and text.upper() in letters:
        return text.upper()
    hits = [letters[j] for j, c in enumerate(choices) if normalise(c) == normalise(text)]
    if len(hits) == 1:
        return hits[0]
    raise UserError(f"{where}: field 'answer' {gold!r} is not a letter ({letters[0]}-{letters[-1]}), "
                    "a 0-based index or the text of one of the choices")
