"""The task interface: load questions, build the prompt, extract an answer, score it.

Every benchmark family (`mmlu`, `gsm8k`, `math`, `humaneval`, `synthetic`) implements `Task`.
The runtime, the offline backends and the trainer only ever talk to this interface.

`BaseTask` is the shared implementation most families inherit: `get` (index the default source
once, look an id up), `score` = `extract` + `is_correct`, `score_many` (code tasks override it to
run programs in parallel), and the jsonl / jsonl.gz / HF-datasets readers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hieramas_gnn.errors import DataMissingError, UserError
from hieramas_gnn.guards import check_regular_file


@dataclass(frozen=True)
class Question:
    """One benchmark item.

    id:      stable id, the join key with outcome tables (e.g. `gsm8k/test/12`, `HumanEval/0`).
    task:    the task name it belongs to (`gsm8k`, `mmlu_redux`, `humaneval_plus`, ...).
    text:    the question as shown to a model (for MC: question + lettered choices; for code: the
             function prompt).
    gold:    the reference answer (letter, number string, LaTeX string, or canonical solution).
    meta:    extra fields: `domain` (always), `difficulty` (where known), `subject`, `choices`,
             `entry_point`, `test`, `error_type` (MMLU-Redux), `split`, ...
    """

    id: str
    task: str
    text: str
    gold: Any
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Score:
    """The grade of one response: `correct`, and the answer that was extracted (None if none)."""

    correct: bool
    extracted: str | None


@runtime_checkable
class Task(Protocol):
    """What every benchmark family provides.

    name:         registry name (`gsm8k`, `math500`, `mmlu`, `mmlu_redux`, `humaneval`,
                  `humaneval_plus`, `synthetic`, ...).
    family:       role-set / prompt family (`mmlu`, `gsm8k`, `math`, `humaneval`, `synthetic`,
                  `general` for jsonl tasks).
    answer_kind:  `choice` | `number` | `latex` | `code` | `text` (jsonl tasks, `exact`/`regex`/
                  callable scorers) | `mixed` (synthetic: per question in `meta["answer_kind"]`).

    Bring your own: implement this protocol (subclass `BaseTask` for `get` and `score`) and name
    it as `module:object` in `task.name`, or install it as an entry point of the group
    `hieramas_gnn.tasks`; `tasks/generic.py` is a task from a jsonl file and a scorer name.
    """

    name: str
    family: str
    answer_kind: str

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        """Questions from a local file (jsonl / jsonl.gz), a default location, or HF by name."""
        ...

    def get(self, question_id: str) -> Question:
        """One question of the default source by id (indexed once); unknown id -> UserError."""
        ...

    def instruction(self) -> str:
        """How the final answer must be formatted (appended to every prompt of this task)."""
        ...

    def extract(self, response: str, question: Question) -> str | None:
        """The final answer in a model reply, normalised; None when there is none."""
        ...

    def score(self, response: str, question: Question) -> Score:
        """Grade one reply (code tasks execute tests in the sandbox)."""
        ...

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        """Grade an already extracted answer (used by vote/oracle baselines and backends)."""
        ...

    def render_answer(self, answer: str, question: Question) -> str:
        """A natural reply text whose `extract` gives back `answer` (used by the sim backend)."""
        ...


def instruction_for(task: Any, question: Question) -> str:
    """The answer-format instruction of `question`'s prompt: `task.instruction_for(question)`
    where the task has one (a mixed task: its component's), else `task.instruction()`."""
    per_question = getattr(task, "instruction_for", None)
    return per_question(question) if callable(per_question) else task.instruction()


class BaseTask:
    """Shared behaviour: id lookup over the default source, score = extract + is_correct."""

    name: str = ""
    family: str = ""
    answer_kind: str = ""

    def __init__(self) -> None:
        self._index: dict[str, Question] | None = None
        self._index_lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Picklable (tasks travel to Ray workers): the lock and the lazy id index stay behind."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_index", "_index_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._index, self._index_lock = None, threading.Lock()

    # -- to implement -------------------------------------------------------------------------
    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        raise NotImplementedError

    def extract(self, response: str, question: Question) -> str | None:
        raise NotImplementedError

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def get(self, question_id: str) -> Question:
        """Look a question up in the default source (loaded and indexed on first use)."""
        with self._index_lock:
            if self._index is None:
                self._index = {q.id: q for q in self.load()}
        try:
            return self._index[question_id]
        except KeyError:
            raise UserError(f"unknown question id {question_id!r} for task {self.name!r}") from None

    def score(self, response: str, question: Question) -> Score:
        extracted = self.extract(response or "", question)
        return Score(correct=self.is_correct(extracted, question), extracted=extracted)

    def score_many(self, pairs: Sequence[tuple[str, Question]], workers: int | None = None) -> list[Score]:
        """Grade many (response, question) pairs; code tasks override this to run in parallel."""
        return [self.score(response, q) for response, q in pairs]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# -- readers -----------------------------------------------------------------------------------

def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a `.jsonl` or `.jsonl.gz` file; a missing file or a bad line is a UserError."""
    p = Path(path)
    if not str(path) or not p.exists():
        raise DataMissingError(f"data file not found: {p if str(path) else '(none given)'}")
    check_regular_file(p, "data file")
    if p.is_dir():
        raise UserError(f"data file {p}: is a folder, not a .jsonl file")
    opener = gzip.open if p.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
                except RecursionError:
                    raise UserError(f"{p}:{lineno}: JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise UserError(f"{p}:{lineno + 1}: not UTF-8 text (save the file as UTF-8)") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a truncated .gz ends in EOFError
        raise UserError(f"{p}: cannot read it ({type(exc).__name__}: {exc})") from None


def load_hf(name: str, split: str, config: str | None = None) -> Iterable[dict[str, Any]]:
    """Rows of a Hugging Face dataset (`datasets` is optional and imported only here)."""
    try:
        import datasets  # noqa: PLC0415  (optional dependency)
    except ImportError:
        raise DataMissingError(
            f"loading {name!r} from Hugging Face needs the `datasets` package "
            "(pip install datasets) and network access; or pass a local .jsonl/.jsonl.gz path"
        ) from None
    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown name, unknown split: one clear line for the user
        raise DataMissingError(
            f"could not load Hugging Face dataset {name!r} (config={config!r}, split={split!r}): "
            f"{type(exc).__name__}: {exc}. Offline (HF_HUB_OFFLINE=1)? Pass a local file instead."
        ) from None


def resolve_source(path: str | None, default: Path, task: str) -> tuple[str, str]:
    """('hf', name) for `hf:NAME[:CONFIG]`, else ('file', path) with the default when None."""
    if path is not None and str(path).startswith("hf:"):
        return "hf", str(path)[3:]
    p = Path(path) if path is not None else default
    if not p.exists():
        hint = "" if path is not None else " (the default shared data is absent; pass --data PATH or hf:NAME)"
        raise DataMissingError(f"data for task {task!r} not found: {p}{hint}")
    return "file", str(p)


def read_rows(path: str | None, default: Path, task: str, split: str,
              hf_config: str | None = None) -> Iterable[dict]:
    """Raw rows of a task's source: a local jsonl(.gz) (the default when `path` is None) or, for
    `hf:NAME[:CONFIG]`, a Hugging Face dataset split (`hf_config` when no CONFIG is given)."""
    kind, src = resolve_source(path, default, task)
    if kind == "hf":
        name, _, config = src.partition(":")
        return load_hf(name, split, config or hf_config)
    return read_jsonl(src)


def take(rows: Iterable[Question], limit: int | None) -> list[Question]:
    """The first `limit` questions (all when None); a negative limit is a UserError."""
    if limit is not None and limit < 0:
        raise UserError(f"limit must be >= 0, got {limit}")
    out: list[Question] = []
    for q in rows:
        if limit is not None and len(out) >= limit:
            break
        out.append(q)
    return out


def partition(questions: Sequence[Question], split: str, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
              salt: str = "") -> list[Question]:
    """A deterministic train/val/test subset of a benchmark, by a hash of each id (order kept).

    Used to hold out part of a single-split benchmark (every local benchmark file is a test set).
    """
    names = ("train", "val", "test")
    if split not in names:
        raise UserError(f"split must be one of {names}, got {split!r}")
    lo = sum(fractions[: names.index(split)])
    hi = lo + fractions[names.index(split)]
    out = []
    for q in questions:
        u = int.from_bytes(hashlib.sha256(f"{salt}{q.id}".encode()).digest()[:8], "big") / 2**64
        if lo <= u < hi:
            out.append(q)
    return out
