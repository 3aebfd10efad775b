"""The task interface: load questions, build the prompt, extract an answer, score it.

Every benchmark family (`mmlu`, `gsm8k`, `math`, `humaneval`, `synthetic`) implements `Task`.
The runtime, the offline backends and the trainer only ever talk to this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Question:
    """One benchmark item.

    id:      stable id, the join key with outcome tables (e.g. `gsm8k/test/12`, `HumanEval/0`).
    task:    the task name it belongs to (`gsm8k`, `mmlu_redux`, `humaneval_plus`, ...).
    text:    the question as shown to a model (for MC: question + lettered choices; for code: the
             function prompt).
    gold:    the reference answer (letter, number string, LaTeX string, or canonical solution).
    meta:    extra fields: `subject`/`domain`, `difficulty`, `choices`, `entry_point`, `test`,
             `error_type` (MMLU-Redux), `split`, ...
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
    family:       role-set / prompt family (`mmlu`, `gsm8k`, `math`, `humaneval`, `synthetic`).
    answer_kind:  `choice` | `number` | `latex` | `code`.
    """

    name: str
    family: str
    answer_kind: str

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        """Questions from a local file (jsonl / jsonl.gz), a default location, or HF by name."""
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
