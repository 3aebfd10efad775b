"""`replay/<model>`: real per-question answers of real models (its litellm provider is
`backends.providers.ReplayProvider`).

Reads tidy outcome tables (`benchmark, question_id, model, answer, correct`, optional
`output_chars`; the schema of `../shared/data/outcomes/`) and, where available, the models' raw
full replies (`outcomes/raw/*.jsonl.gz`: `question_id, model, output`).

* A call with no context answers (a proposer, a single model) returns the model's real answer:
  its real full reply when there is one and the task's scorer grades it as the table does,
  else a reply rendered with `task.render_answer` (graded the same way). So replaying a model
  over a table reproduces its accuracy in that table exactly.
* A call with context answers (synthesizer, decision, a node reading its predecessors) goes
  through the behaviour model (`behaviour.py`): the model's real answer is its own answer, its
  accuracy over the table its strength. The output is one of the context answers or its own.
* Token counts: prompt chars / 4; completion = the real reply length (`output_chars` or the raw
  reply) / 4. Latency is not replayed (0 ms).
* An unknown model or question is a `UserError` naming it and the table.
* Recorded-outcome tasks (RouterDC, RouterBench: `tasks/recorded.py`) replay their tables through
  `backends/recorded.py` (sampled pass rates, real letters, the recorded per-question cost, the
  documented answers of wrong models: `wrong_answers`). A mixed task (`tasks/mix.py`) replays each
  question from its component's table.
* Cost: a pool model with `cost: recorded` costs, per call, the table's recorded cost of that
  model on that question (RouterBench's `total_cost_usd`), whatever the tokens (`reply_cost`).
* One pool model, several tables under other names (a pool over tasks, `hieramas outcomes pool
  --crosswalk`): `extra.litellm_params.replay_models: {task: name in that task's table}`.
* Your own table: a pool model with `extra.litellm_params.replay_table: PATH` replays that file
  (validated by `read_outcome_table`) instead of the task's default; `hieramas outcomes pool`
  writes such a pool from a table in one command.
"""

from __future__ import annotations

import gzip
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from hieramas_gnn.backends.behaviour import (
    BehaviourConfig,
    choose,
    load_behaviour,
    rng_for,
)
from hieramas_gnn.backends.recorded import Outcome, RecordedOutcomes, missing_outcome
from hieramas_gnn.errors import DataMissingError, UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.recorded import RecordedTask

# task -> (outcome tables, raw reply files), relative to the shared data folder
DEFAULT_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mmlu_redux": (("outcomes/mmlu_redux_helm14.csv.gz",), ()),
    "mmlu": (("outcomes/mmlu_helm10.csv.gz",), ()),
    "gsm8k": (("outcomes/gsm8k_zeroeval.csv.gz",), ("outcomes/raw/gsm8k_zeroeval_outputs.jsonl.gz",)),
    "math_l5": (("outcomes/math_l5_zeroeval.csv.gz",), ("outcomes/raw/math_l5_zeroeval_outputs.jsonl.gz",)),
}
NO_ANSWER = "I could not determine the answer."


REQUIRED_COLUMNS = ("question_id", "model", "answer", "correct")
_TRUE, _FALSE = {"1", "1.0", "true"}, {"0", "0.0", "false"}


def read_outcome_table(path: str | Path, required: tuple[str, ...] = REQUIRED_COLUMNS):
    """A validated tidy outcome table (pandas DataFrame, `correct` as int 0/1).

    Columns `question_id, model, answer, correct` (more are kept: `output_chars`, `answer_num`,
    `benchmark`, ...). `answer` is the model's extracted final answer, empty when it gave none;
    `correct` is 0/1 (or true/false). Errors name the file, the row (1-based, the header not
    counted; line = row + 1) and the column: a missing column, an empty `question_id` / `model`,
    a missing (NaN) or non-binary `correct`, a non-numeric `output_chars`, and a (question_id,
    model) pair given twice.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UserError(f"outcome table {path} does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # a bad file: say which and why, nothing else
        raise UserError(f"outcome table {path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"outcome table {path}: missing column(s) {', '.join(missing)} "
                        f"(has: {', '.join(map(str, df.columns))}; needs: {', '.join(required)})")
    if df.empty:
        raise UserError(f"outcome table {path}: no rows")
    for col in ("question_id", "model"):
        bad = df.index[df[col].str.strip().isin(["", "nan", "NaN", "None"])]
        if len(bad):
            raise UserError(f"outcome table {path}: row {bad[0] + 1}, column {col}: empty or NaN")
    flag = df["correct"].str.strip().str.lower()
    bad = df.index[~flag.isin(_TRUE | _FALSE)]
    if len(bad):
        value = df["correct"].iloc[bad[0]]
        what = "missing (NaN)" if value.strip().lower() in ("", "nan", "none", "null") else f"{value!r} is not 0/1"
        raise UserError(f"outcome table {path}: row {bad[0] + 1}, column correct: {what} "
                        f"({len(bad)} such row(s); correct must be 0 or 1)")
    dup = df.duplicated(["question_id", "model"], keep=False)
    if dup.any():
        rows = df.index[dup][:2]
        first = df.iloc[rows[0]]
        raise UserError(f"outcome table {path}: rows {rows[0] + 1} and {rows[1] + 1}: duplicate "
                        f"(question_id, model) = ({first['question_id']!r}, {first['model']!r}); "
                        "one outcome per model and question")
    if "output_chars" in df:
        num = pd.to_numeric(df["output_chars"].replace("", None), errors="coerce")
        bad = df.index[num.isna() & (df["output_chars"].str.strip() != "")]
        if len(bad):
            raise UserError(f"outcome table {path}: row {bad[0] + 1}, column output_chars: not a number")
    df["correct"] = flag.isin(_TRUE).astype(int)
    return df


class OutcomeTable:
    """One task's outcomes, indexed by (model, question_id), loaded on first use."""

    def __init__(self, task: str, tables: list[Path], raws: list[Path]) -> None:
        self.task, self.tables, self.raws = task, tables, raws
        self._rows: dict[tuple[str, str], Outcome] | None = None
        self._raw: dict[tuple[str, str], str] | None = None
        self._lock = threading.Lock()
        self.accuracy: dict[str, float] = {}

    def _load(self) -> dict[tuple[str, str], Outcome]:
        import pandas as pd

        with self._lock:
            if self._rows is None:
                frames = []
                for path in self.tables:
                    if not path.exists():
                        raise DataMissingError(f"replay: outcome table {path} not found (task {self.task})")
                    frames.append(read_outcome_table(path))
                df = pd.concat(frames, ignore_index=True)
                chars = df["output_chars"] if "output_chars" in df else [None] * len(df)
                self._rows = {
                    (m, q): Outcome(a if a.strip() else None, bool(c), int(float(n)) if n not in (None, "") else None)
                    for m, q, a, c, n in zip(df["model"], df["question_id"], df["answer"].astype(str),
                                             df["correct"], chars)
                }
                self.accuracy = {str(m): float(v) for m, v in df.groupby("model")["correct"].mean().items()}
        return self._rows

    def models(self) -> list[str]:
        self._load()
        return sorted(self.accuracy)

    def get(self, model: str, qid: str, sample: int = 0) -> Outcome:
        """The recorded outcome (the same for every sample: one real answer per question)."""
        rows = self._load()
        out = rows.get((model, qid))
        if out is None:
            raise missing_outcome(model, qid, self.task, self.tables, self.accuracy, self.models())
        return out

    def raw(self, model: str, qid: str) -> str | None:
        if not self.raws:
            return None
        with self._lock:
            if self._raw is None:
                self._raw = {}
                for path in self.raws:
                    if path.exists():
                        with gzip.open(path, "rt") as fh:
                            for line in fh:
                                r = json.loads(line)
                                self._raw[(r["model"], r["question_id"])] = r["output"]
        return self._raw.get((model, qid))


class Replayer:
    """The pure part of the backend (no litellm): tables + behaviour config -> replies."""

    def __init__(self, tables: dict[str, Any] | None = None, behaviour: BehaviourConfig | None = None,
                 seed: int = 0, shared: Path | None = None, wrong_answers: str = "distinct") -> None:
        self.shared = Path(shared) if shared else shared_data_dir()
        self.spec = dict(tables) if tables else dict(DEFAULT_TABLES)
        self.seed = seed
        self.wrong_answers = wrong_answers
        self._behaviour = behaviour
        self._tables: dict[tuple[str, str | None], OutcomeTable] = {}

    @property
    def behaviour(self) -> BehaviourConfig:
        if self._behaviour is None:
            self._behaviour = load_behaviour(seed=self.seed)
        return self._behaviour

    def table(self, task: str, path: str | None = None) -> OutcomeTable:
        """The task's default table, or the user table at `path` (a pool model's `replay_table`)."""
        key = (task, path)
        if key not in self._tables:
            recorded = self._recorded(task) if path is None else None
            if recorded is not None:
                self._tables[key] = recorded
            elif path is not None:
                self._tables[key] = OutcomeTable(task, [Path(path)], [])
            elif task not in self.spec:
                raise UserError(f"replay: no outcome table for task {task!r} (tables: {', '.join(self.spec)}; "
                                "or give the model extra.litellm_params.replay_table, see `hieramas outcomes pool`)")
            else:
                tables, raws = self.spec[task]
                self._tables[key] = OutcomeTable(task, [self.shared / t for t in tables],
                                                 [self.shared / r for r in raws])
        return self._tables[key]

    def _recorded(self, task: str) -> Any:
        """The replayed outcomes of a recorded-outcome task (`backends/recorded.py`), else None."""
        from hieramas_gnn.tasks import get_task  # lazy: a name of this module's own

        if task in self.spec:
            return None
        t = get_task(task)
        if not isinstance(t, RecordedTask):
            return None
        return RecordedOutcomes(t, self.shared, self.wrong_answers)

    def reply(self, model: str, meta: dict[str, Any], prompt_chars: int,
              table_path: str | None = None) -> tuple[str, int, int]:
        """(text, prompt_tokens, completion_tokens) of one replayed call (`table_path`: a user
        outcome table instead of the task's default one)."""
        return self.call(model, meta, prompt_chars, table_path)[:3]

    def call(self, model: str, meta: dict[str, Any], prompt_chars: int, table_path: str | None = None,
             names: dict[str, str] | None = None) -> tuple[str, int, int, float | None]:
        """`reply` and the call's recorded cost (None where the table records none); `names`:
        the model's name in each task's table, when it differs from `model`."""
        for key in ("task", "question_id"):
            if not meta.get(key):
                raise UserError(f"replay/{model}: call metadata lacks {key!r}")
        tname, qid = meta["task"], meta["question_id"]
        task = get_task(tname)
        if hasattr(task, "component"):  # a mixed task: the question's component replays it
            task = task.component(qid)
            tname = task.name
        model = (names or {}).get(tname, model)
        sample = int(meta.get("sample_index", 0) or 0)
        table = self.table(tname, table_path)
        out = table.get(model, qid, sample)
        q = task.get(qid)
        text = self.real_reply(tname, model, qid, table_path, sample)
        context = list(meta.get("context_answers") or [])
        if any(a is not None for a in context):
            # one draw per (model, question, sample): the model's readings are coupled (`choose`)
            rng = rng_for(self.seed, "replay", model, qid, meta.get("sample_index", 0))
            strength = table.accuracy.get(model, 0.5)
            own = task.extract(text, q)  # normalised like the context answers (same extractor)
            chosen = choose(own, context, lambda a: task.is_correct(a, q), strength, self.behaviour, rng)
            if chosen != own:
                text = task.render_answer(chosen, q) if chosen is not None else NO_ANSWER
        length = out.output_chars if out.output_chars is not None else len(text)
        return text, max(1, prompt_chars // 4), max(1, length // 4), out.cost_usd

    @lru_cache(maxsize=65536)  # noqa: B019 (one Replayer per provider; bounded)
    def real_reply(self, tname: str, model: str, qid: str, table_path: str | None = None, sample: int = 0) -> str:
        """The model's real reply, or a rendered one that the task grades as the table does."""
        table = self.table(tname, table_path)
        task, out = get_task(tname), table.get(model, qid, sample)
        q = task.get(qid)
        candidates = [table.raw(model, qid)]
        if out.answer is not None:
            candidates += [task.render_answer(out.answer, q), out.answer]
        if not out.correct:
            candidates.append(NO_ANSWER)
        for text in candidates:
            if text is not None and task.score(text, q).correct == out.correct:
                return text
        return candidates[-1] or NO_ANSWER
