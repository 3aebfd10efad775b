"""Task registry: `get_task(name) -> Task`, `TASK_NAMES`, and the ways to bring your own task.

A name resolves, in order, to:

1. a built-in benchmark (`TASK_NAMES`; a family's module is imported on its first use);
2. a task registered in this process (`register_task`: what `task_from_config` does for the
   generic jsonl task and for `module:object` tasks, so the offline backends, which look a
   question up by `get_task(metadata["task"])`, find the same object);
3. `module:object`: a `Task` instance, or a class / factory called with no arguments, in an
   importable module (installed or on PYTHONPATH);
4. a task file `NAME.yaml` (`name`, `path`, `scorer`: the generic jsonl task; `path` relative to
   the file), so commands that take `--task` (eval, baselines, run, score) reach a jsonl task too;
5. an entry point of the group `hieramas_gnn.tasks` (a package you install declares
   `[project.entry-points."hieramas_gnn.tasks"] mytask = "mypkg.tasks:MyTask"`).

Every resolved task is checked against the `Task` protocol (name, family, answer_kind, load,
get, instruction, extract, score, is_correct, render_answer); a missing piece is a `UserError`
naming it. `get_task` returns one shared instance per name (a task holds only a read-only
id index), so `get_task(n).get(qid)` indexes the data once per process.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks.base import BaseTask, Question, Score, Task
from hieramas_gnn.tasks.generic import GenericTask
from hieramas_gnn.tasks.mix import MIX, mix_from_components

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
    # recorded-outcome slices (RouterDC, RouterBench: replay only) and the mixes built from them
    **{name: ("recorded", "RecordedTask", {"name": name}) for name in (
        "routerdc_mmlu", "routerdc_gsm8k", "routerdc_arc", "routerdc_humaneval", "routerdc_math_prealgebra",
        "routerdc_mbpp", "routerbench_arc", "routerbench_winogrande", "routerbench_mbpp")},
    **{name: ("mix", "preset_mix", {"name": name}) for name in ("routerdc", "routerdc_ood", "routerbench")},
}

TASK_NAMES: tuple[str, ...] = tuple(_REGISTRY)
ENTRY_POINT_GROUP = "hieramas_gnn.tasks"
PROTOCOL_ATTRS = ("name", "family", "answer_kind")
PROTOCOL_METHODS = ("load", "get", "instruction", "extract", "score", "is_correct", "render_answer")

_instances: dict[str, Task] = {}
_lock = threading.Lock()


def get_task(name: str) -> Task:
    """The task called `name` (see the module docstring); unknown -> UserError listing the known ones."""
    with _lock:
        if name in _instances:
            return _instances[name]
    if name in _REGISTRY:
        module_name, cls_name, kwargs = _REGISTRY[name]
        module = importlib.import_module(f"hieramas_gnn.tasks.{module_name}")
        factory = getattr(module, cls_name)
        if "resolve" in inspect.signature(factory).parameters:  # a task built from other tasks (a mix)
            kwargs = {**kwargs, "resolve": get_task}
        task = factory(**kwargs)
    elif name.endswith((".yaml", ".yml")):
        task = register_task(task_from_file(name))
    elif ":" in name:
        task = check_task(_instantiate(_import_object(name), name), name)
    else:
        ep = _entry_points().get(name)
        if ep is None and name == "mix":
            raise UserError("task 'mix' is built from a config's task.components (tasks/mix.py); "
                            "load that config first, or name a built-in mix (routerdc, routerdc_ood, routerbench)")
        if ep is None:
            known = ", ".join(TASK_NAMES + tuple(sorted(_entry_points())))
            raise UserError(f"unknown task {name!r}; known tasks: {known} (or `module:object`, or a "
                            "jsonl file with task.path and task.scorer)")
        task = check_task(_instantiate(ep.load(), f"entry point {name}"), f"entry point {name}")
    with _lock:
        return _instances.setdefault(name, task)


def register_task(task: Any, *aliases: str) -> Task:
    """Make `task` what `get_task(task.name)` (and each alias) returns in this process.

    A built-in name cannot be taken; registering another object under a user name replaces it
    (a config re-read in the same process, e.g. tests)."""
    task = check_task(task, repr(task))
    for key in (task.name, *aliases):
        if key in _REGISTRY:
            raise UserError(f"task name {key!r} is a built-in benchmark; choose another task.name")
    with _lock:
        for key in (task.name, *aliases):
            _instances[key] = task
    return task


def task_from_config(tc: Any) -> Task:
    """The task a config's `task` section names (`name`, `path`, `scorer`), registered.

    `scorer` set: the generic jsonl task (`tasks/generic.py`) called `name`, read from `path`.
    `name: mix`: the mixed task of `components` (`tasks/mix.py`), registered as `mix`.
    Else `get_task(name)`; a `module:object` task is also registered under its own `name`."""
    components = getattr(tc, "components", None) or []
    if tc.name == MIX:
        return register_task(mix_from_components(MIX, components, get_task))
    if components:
        raise UserError(f"task.components: only for task.name: {MIX} (task.name is {tc.name!r})")
    scorer = getattr(tc, "scorer", None)
    if scorer:
        if not tc.path:
            raise UserError(f"task.path: the generic task {tc.name!r} (task.scorer={scorer}) needs "
                            "its question file (.jsonl)")
        return register_task(GenericTask(tc.name, tc.path, scorer))
    task = get_task(tc.name)
    if (":" in tc.name or tc.name.endswith((".yaml", ".yml"))) and task.name != tc.name:
        register_task(task)
    return task


def task_from_file(path: str) -> Task:
    """The generic jsonl task a task file describes: `{name, path, scorer}` (YAML)."""
    import yaml


    p = Path(path)
    if not p.is_file():
        raise UserError(f"task file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"task file {p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"task file {p}: expected a mapping with name, path, scorer")
    unknown = sorted(set(map(str, data)) - {"name", "path", "scorer"})
    if unknown:
        raise UserError(f"task file {p}: unknown field {unknown[0]!r} (fields: name, path, scorer)")
    for key in ("name", "path"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise UserError(f"task file {p}: {key}: required, a non-empty string")
    return GenericTask(data["name"], p.parent / data["path"], str(data.get("scorer") or "exact"))


def task_names() -> list[str]:
    """Built-in names, then the installed entry points, then the tasks registered here."""
    names = list(TASK_NAMES) + sorted(_entry_points())
    with _lock:
        names += [n for n in _instances if n not in names]
    return names


def check_task(task: Any, where: str) -> Task:
    """`task` when it provides the `Task` protocol; else a UserError naming what it lacks."""
    for attr in PROTOCOL_ATTRS:
        value = getattr(task, attr, None)
        if not isinstance(value, str) or not value:
            raise UserError(f"task {where}: needs a non-empty string attribute {attr!r}")
    for method in PROTOCOL_METHODS:
        if not callable(getattr(task, method, None)):
            raise UserError(f"task {where}: needs a method {method}() (see hieramas_gnn/tasks/base.py; "
                            "subclass BaseTask to get get() and score())")
    return task


def _import_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"task {spec}: cannot import module {module_name!r} ({exc}); install it "
                        "or put its folder on PYTHONPATH") from None
    obj: Any = module
    for part in attr.split("."):
        if not part or not hasattr(obj, part):
            raise UserError(f"task {spec}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _instantiate(obj: Any, where: str) -> Any:
    """A class or a factory is called with no arguments; an instance is used as it is."""
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "load")):
        try:
            return obj()
        except TypeError as exc:
            raise UserError(f"task {where}: cannot be built with no arguments ({exc})") from None
    return obj


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


__all__ = ["ENTRY_POINT_GROUP", "TASK_NAMES", "BaseTask", "Question", "Score", "Task", "check_task",
           "get_task", "register_task", "task_from_config", "task_from_file", "task_names"]
