"""`hieramas eval --policy DIR --task T ...`: evaluate an exported policy (or a fixed design) on
held-out queries, optionally next to baselines, and write the report.

The policy decides per query with the one design-choice function (`policy/choose.py`) under the
route the bundle recorded as trained (`classifier`: the best of K candidate DAGs by the
graph-score head; `edges`: the edge head's DAG): the same designs `hieramas run` and
`hieramas serve` choose for the same questions.
`--design FILE` evaluates one fixed Design (JSON, as written by `hieramas run`/the report) on
every query instead. Rows have the `hieramas baselines` columns; `--out DIR` writes
`report.md`, `pareto.png`, `topology.png` and `results.json` (the policy is method `hieramas`).

Example: hieramas eval --policy runs/demo/policy --task synthetic --offset 200 --limit 100 \\
    --baselines single,moa --out runs/eval
"""

from __future__ import annotations

import argparse
from typing import Any

from hieramas_gnn.bundle import check_digest, load_chooser, read_meta
from hieramas_gnn.bundle_trust import add_trust_args, bundle_pool, check_family
from hieramas_gnn.commands.common import (
    BUDGET_EXIT,
    add_backend_args,
    backend_name,
    backend_settings,
    budget_message,
    budget_stopped,
    check_out_file,
    check_positive,
    command_client,
    make_ray_runner,
    run_baselines_ray,
)
from hieramas_gnn.distributed.options import add_executor_args, check_executor_args
from hieramas_gnn.errors import UserError
from hieramas_gnn.eval import baselines as B
from hieramas_gnn.eval import report
from hieramas_gnn.eval.evaluate import ExecutorRunner, evaluate_designs
from hieramas_gnn.guards import check_apart, check_report_out
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task

MAX_QUESTIONS = 1_000_000  # offset + limit cap: a typo like --offset 100000000 must not build 10^8 questions


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate an exported policy (or a design) on held-out queries",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--policy", help="policy bundle folder (from `hieramas demo` / `hieramas export`)")
    src.add_argument("--design", help="a Design JSON file, run as-is on every query")
    p.add_argument("--task", required=True, help="task name (`hieramas tasks list`)")
    p.add_argument("--pool", default=None, help="pool name or YAML (default: the bundle's pool)")
    p.add_argument("--data", default=None, help="local question file (default: the task's source)")
    p.add_argument("--split", default="test")
    p.add_argument("--offset", type=int, default=0, help="skip this many questions (e.g. the training ones)")
    p.add_argument("--limit", type=int, default=100, help="questions to evaluate")
    p.add_argument("--seed", type=int, default=0, help="seed of the `random` baseline's DAGs")
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.add_argument("--baselines", default=None, help="comma-separated baseline methods to add (e.g. single,moa)")
    p.add_argument("--cache", default="runs/rollouts.sqlite", help="rollout cache (SQLite)")
    p.add_argument("--cache-mode", default="rw", choices=("rw", "replay", "off"))
    p.add_argument("--budget", type=float, default=None, help="spend cap in USD for this command")
    p.add_argument("--max-in-flight", type=int, default=32)

    add_backend_args(p)
    p.add_argument("--out", default=None, help="write report.md, results.json and plots here")

    add_executor_args(p)

    add_trust_args(p)
    p.set_defaults(func=run)


def load_questions(args: argparse.Namespace, task: Any) -> list:
    if args.limit < 1 or args.offset < 0:
        raise UserError(f"--limit must be >= 1 and --offset >= 0, got {args.limit} / {args.offset}")
    if args.offset + args.limit > MAX_QUESTIONS:
        raise UserError(f"--offset {args.offset} + --limit {args.limit} is past {MAX_QUESTIONS:,} questions, "
                        "more than any task holds")
    qs = task.load(args.data, split=args.split, limit=args.offset + args.limit)[args.offset:]
    if not qs:
        raise UserError(f"task {task.name}: no questions after --offset {args.offset} (split {args.split!r})")
    return qs


def policy_rule(args: argparse.Namespace, pool: Any):
    """(rule: questions -> designs, pool) for an exported policy: the bundle's choice function."""
    check_digest(args.policy, getattr(args, "sha256", None))
    meta = read_meta(args.policy)
    trust = bool(getattr(args, "trust_bundle_endpoints", False))
    pool = pool or bundle_pool(args.policy, meta, args.pool, trust=trust)
    check_family(meta.family, args.policy, trust)
    chooser, _ = load_chooser(args.policy, pool=pool, embed_cache=args.embed_cache)
    return chooser.designs, pool


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys
    from pathlib import Path


    check_executor_args(args)
    check_positive(args.max_in_flight, "--max-in-flight")
    if args.budget is not None and not (0 <= args.budget < float("inf")):
        raise UserError(f"--budget must be a finite number >= 0, got {args.budget}")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: is a file; give a folder")
    check_out_file(args.out and str(Path(args.out) / "results.json"), "--out")

    check_apart(args.out, "--out", {"--cache": args.cache, "--data": args.data, "--design": args.design,
                                    "--policy": args.policy})
    check_report_out(args.out, "--out")
    task = get_task(args.task)
    roleset = get_roleset(task.family)
    if args.policy:
        rule, pool = policy_rule(args, None)
        method = "hieramas"
    else:
        pool = load_pool(args.pool or "sim")
        try:
            fixed = Design.from_json(_read_text(args.design, "--design")).validate(roleset, pool)
        except UserError as exc:
            raise UserError(f"--design {args.design}: {exc}") from None
        rule, method = (lambda qs: [fixed] * len(qs)), f"design:{Path(args.design).stem}"
    questions = load_questions(args, task)
    designs = rule(questions)
    for d in designs:
        d.validate(roleset, pool)
    cache_path = None if args.cache_mode == "off" else args.cache
    if args.executor == "ray":
        runner, client = make_ray_runner(args, pool, cache_path, args.cache_mode, task, roleset), None
    else:
        client = command_client(pool, cache_path, args.cache_mode, args.max_in_flight, args.budget,
                             backend_settings(args))
        runner = ExecutorRunner(client, task, roleset, max_in_flight=args.max_in_flight)
    try:
        rows = [evaluate_designs(method, designs, questions, runner)]
        if args.baselines:
            bl = B.Baselines(task, roleset, pool.names, B.BaselineConfig(seed=args.seed))
            methods = B.expand_methods([m.strip() for m in args.baselines.split(",") if m.strip()], pool.names)
            traces = (run_baselines_ray(runner, bl, methods, questions) if args.executor == "ray" else
                      asyncio.run(B.run_baselines(bl, methods, questions, client, args.max_in_flight)))
            rows += B.result_rows(traces)
    finally:
        if args.executor == "ray":
            runner.close()
    print(report.markdown_table(rows, highlight=method))
    stopped = budget_stopped(client)
    if args.out:
        meta = {"task": task.name, "backend": backend_name(pool), "n": len(questions), "pool": pool.name,
                "source": args.policy or args.design, "offset": args.offset, "budget_stopped": stopped}
        report.write_report(args.out, rows, meta=meta, design=designs[0], title=f"hieramas eval: {task.name}")
        print(f"wrote {args.out}/report.md, results.json, pareto.png, topology.png")
    if stopped:
        n_failed = sum(r.get("n_failed", 0) for r in rows)
        print(f"hieramas eval: {budget_message(client, args.budget, n_failed, sum(r['n'] for r in rows))}",
              file=sys.stderr)
        return BUDGET_EXIT
    return 0


def _read_text(path: str, flag: str) -> str:
    from pathlib import Path


    p = Path(path)
    if not p.is_file():
        raise UserError(f"{flag} {path}: no such file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{flag} {path}: not UTF-8 text") from None
