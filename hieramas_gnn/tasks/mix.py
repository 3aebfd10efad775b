"""Mixed tasks: several of the project's tasks as one, scored per component.

A `MixTask` composes component tasks (any names `get_task` resolves). Its questions are the
components' questions (each keeps its own id and `task`: the component's name, so grading, the
replay tables and the prompts' answer format stay the component's), with `meta["component"]` =
the component's name and `meta["domain"]` = the component's short name (the split stratifies on
it, so every part holds each component in its share); a component's own domain moves to
`meta["subdomain"]`. A question id must be unique over the components.

- `task.name: mix` with `task.components: [{name: gsm8k, size: 400}, {name: mmlu_redux, size: 400}]`
  composes any tasks; `size` takes that many questions of the component's split (a fixed
  pseudo-random subset: the ids ranked by their sha256), none = all of it.
- Built-in mixes: `routerdc` (RouterDC's four in-distribution benchmarks: MMLU, GSM8K,
  ARC-Challenge, HumanEval; the authors' train and test files), `routerdc_ood` (test: MATH
  prealgebra + MBPP; train: routerdc's train files, so a run trains in distribution and tests out
  of it) and `routerbench` (ARC-Challenge, Winogrande, MBPP with real costs; authors' split).

Accuracy of a mixed task is reported per component and as the mean over components
(`eval/mixed.py`: `by_component`, `accuracy_task_mean`), the metric the published tables use.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Callable

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.tasks.base import Question, Score, Task, take

MIX = "mix"
PRESETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name -> (components, components of the train split when they differ)
    "routerdc": (("routerdc_mmlu", "routerdc_gsm8k", "routerdc_arc", "routerdc_humaneval"), ()),
    "routerdc_ood": (("routerdc_math_prealgebra", "routerdc_mbpp"),
                     ("routerdc_mmlu", "routerdc_gsm8k", "routerdc_arc", "routerdc_humaneval")),
    "routerbench": (("routerbench_arc", "routerbench_winogrande", "routerbench_mbpp"), ()),
}


def hash_rank(qid: str) -> bytes:
    """A question's place in the fixed pseudo-random order `size` subsets are taken in."""
    return hashlib.sha256(qid.encode()).digest()


class MixTask:
    """Several tasks as one (module docstring). Implements the `Task` protocol."""

    answer_kind = "mixed"

    def __init__(self, name: str, components: Sequence[tuple[Task, int | None]],
                 train_components: Sequence[Task] = ()) -> None:
        if not components:
            raise ConfigError(f"task {name}: a mixed task needs at least one component (task.components)")
        names = [t.name for t, _ in components]
        if len(set(names)) != len(names):
            raise ConfigError(f"task {name}: task.components names a task twice ({', '.join(names)})")
        for t, size in components:
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise ConfigError(f"task {name}: component {t.name}: size must be an integer >= 1 or null, got {size!r}")
            if isinstance(t, MixTask):
                raise ConfigError(f"task {name}: component {t.name} is itself a mixed task; list its components")
        self.name = name
        self.components = [(t, size) for t, size in components]
        self.train_components = list(train_components)
        every = [t for t, _ in self.components] + [t for t in self.train_components if t.name not in names]
        self._by_name = {t.name: t for t in every}
        families = {t.family for t in every}
        self.family = families.pop() if len(families) == 1 else "general"
        self._index: dict[str, Question] | None = None
        self._lock = threading.Lock()

    # -- composition ----------------------------------------------------------------------------
    @property
    def component_names(self) -> list[str]:
        """The components of the test split, in order (the `by_component` keys)."""
        return [t.name for t, _ in self.components]

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits of the task's own files every component has (`train` too when the train
        components are given apart); used by `split_by: source`."""
        if self.train_components:
            return ("train", "test")
        common = set.intersection(*(set(_splits_of(t)) for t, _ in self.components))
        return tuple(s for s in ("train", "test") if s in common)

    def component(self, question: Question | str) -> Task:
        """The component task a question (or question id) belongs to."""
        q = self.get(question) if isinstance(question, str) else question
        task = self._by_name.get(q.task)
        if task is None:
            raise UserError(f"task {self.name}: question {q.id!r} belongs to no component ({q.task!r})")
        return task

    def parts(self, split: str) -> list[tuple[Task, int | None]]:
        """(component, size) of `split`: the train components for `train` when they differ."""
        if split == "train" and self.train_components:
            return [(t, None) for t in self.train_components]
        return self.components

    # -- Task protocol --------------------------------------------------------------------------
    def load(self, path: str | None = None, split: str = "test", limit: int | None = None) -> list[Question]:
        """Every component's questions of `split` (each at most its `size`), component by component."""
        if path is not None:
            raise UserError(f"task {self.name}: a mixed task reads its components' own data (task.path must be empty)")
        out: list[Question] = []
        seen: dict[str, str] = {}
        for task, size in self.parts(split):
            qs = task.load(split=split)
            if size is not None:
                if size > len(qs):
                    raise ConfigError(f"task {self.name}: component {task.name}: size {size} but split {split!r} "
                                      f"has only {len(qs)} questions")
                keep = {q.id for q in sorted(qs, key=lambda q: hash_rank(q.id))[:size]}
                qs = [q for q in qs if q.id in keep]
            for q in qs:
                if q.id in seen:
                    raise UserError(f"task {self.name}: question id {q.id!r} is in both {seen[q.id]} and "
                                    f"{task.name}; components must not share ids")
                seen[q.id] = task.name
                out.append(self._tag(task, q))
        return take(out, limit)

    def _tag(self, task: Task, q: Question) -> Question:
        meta = {**q.meta, "component": task.name, "domain": short_name(task)}
        if "domain" in q.meta and q.meta["domain"] != meta["domain"]:
            meta["subdomain"] = q.meta["domain"]
        return replace(q, task=task.name, meta=meta)

    def get(self, question_id: str) -> Question:
        """A question of any component and split by id."""
        with self._lock:
            if self._index is None:
                index: dict[str, Question] = {}
                for task in self._by_name.values():
                    for split in _splits_of(task):
                        for q in task.load(split=split):
                            index.setdefault(q.id, self._tag(task, q))
                self._index = index
        try:
            return self._index[question_id]
        except KeyError:
            raise UserError(f"unknown question id {question_id!r} for task {self.name!r}") from None

    def instruction(self) -> str:
        """The components' answer format when they share one, else the generic one (each prompt
        uses its question's component's: `instruction_for`)."""
        texts = {t.instruction() for t in self._by_name.values()}
        if len(texts) == 1:
            return texts.pop()
        return "End your reply with the final answer on its own line as: Answer: <answer>"

    def instruction_for(self, question: Question) -> str:
        return self.component(question).instruction()

    def extract(self, response: str, question: Question) -> str | None:
        return self.component(question).extract(response, question)

    def score(self, response: str, question: Question) -> Score:
        return self.component(question).score(response, question)

    def score_many(self, pairs: Sequence[tuple[str, Question]], workers: int | None = None) -> list[Score]:
        return [self.score(r, q) for r, q in pairs]

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return self.component(question).is_correct(extracted, question)

    def render_answer(self, answer: str, question: Question) -> str:
        return self.component(question).render_answer(answer, question)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_index", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._index, self._lock = None, threading.Lock()

    def __repr__(self) -> str:
        return f"MixTask(name={self.name!r}, components={self.component_names})"


def short_name(task: Task) -> str:
    """A component's domain label: a recorded slice's benchmark name, else the task name."""
    spec = getattr(task, "spec", None)
    return str(getattr(spec, "domain", None) or task.name)


def _splits_of(task: Any) -> tuple[str, ...]:
    return tuple(getattr(task, "splits", ("test",)))


def preset_mix(name: str, resolve: Callable[[str], Task]) -> MixTask:
    """A built-in mixed task (`PRESETS`); `resolve`: task name -> Task (the registry's `get_task`)."""
    get_task = resolve
    test, train = PRESETS[name]
    return MixTask(name, [(get_task(n), None) for n in test], [get_task(n) for n in train])


def mix_from_components(name: str, components: Sequence[Any], resolve: Callable[[str], Task]) -> MixTask:
    """The mixed task of `task.components` (items with `name` and `size`, or plain mappings);
    `resolve`: task name -> Task (the registry's `get_task`)."""
    get_task = resolve

    parts = []
    for i, c in enumerate(components):
        cname = c.get("name") if isinstance(c, dict) else getattr(c, "name", None)
        size = c.get("size") if isinstance(c, dict) else getattr(c, "size", None)
        if not isinstance(cname, str) or not cname:
            raise ConfigError(f"task.components[{i}].name: required, a task name")
        if cname == MIX or cname in PRESETS:
            raise ConfigError(f"task.components[{i}].name: {cname!r} is a mixed task; list its components instead")
        parts.append((get_task(cname), size))
    return MixTask(name, parts)


__all__ = ["MIX", "PRESETS", "MixTask", "hash_rank", "mix_from_components", "preset_mix", "short_name"]
