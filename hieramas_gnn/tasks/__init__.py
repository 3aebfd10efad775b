"""Benchmark registry: `get_task(name) -> Task` and `TASK_NAMES`.

Imports stay light: a family's module is imported on the first `get_task` of one of its names.
`get_task` returns one shared instance per name (a task holds only a read-only id index), so
`get_task("gsm8k").get(qid)` from any caller indexes the data once per process.
"""

from __future__ import annotations

import functools
import importlib

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks.base import BaseTask, Question, Score, Task

# name -> (module, class name, constructor kwargs)
_REGISTRY: dict[str, tuple[str, str, dict]] = {
    "gsm8k": ("gsm8k", "GSM8KTask", {}),
    "math500": ("math", "MathTask", {"name": "math500"}),
    "math_l5": ("math", "MathTask", {"name": "math_l5"}),
    "mmlu": ("mmlu", "MMLUTask", {"name": "mmlu"}),
    "mmlu_redux": ("mmlu", "MMLUTask", {"name": "mmlu_redux"}),
    "humaneval": ("humaneval", "HumanEvalTask", {"plus": False}),
    "humaneval_plus": ("humaneval", "HumanEvalTask", {"plus": True}),
    "synthetic": ("synthetic", "SyntheticTask", {"kind": "all"}),
    "synthetic_arith": ("synthetic", "SyntheticTask", {"kind": "arith"}),
    "synthetic_mc": ("synthetic", "SyntheticTask", {"kind": "mc"}),
}

TASK_NAMES: tuple[str, ...] = tuple(_REGISTRY)


@functools.lru_cache(maxsize=None)
def get_task(name: str) -> Task:
    """The task registered under `name`; an unknown name is a UserError listing the known ones."""
    if name not in _REGISTRY:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}")
    module_name, cls_name, kwargs = _REGISTRY[name]
    module = importlib.import_module(f"hieramas_gnn.tasks.{module_name}")
    return getattr(module, cls_name)(**kwargs)


__all__ = ["TASK_NAMES", "BaseTask", "Question", "Score", "Task", "get_task"]
