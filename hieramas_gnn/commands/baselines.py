"""`hieramas baselines`: run the comparison baselines on a task with a pool, print one table, write JSON.

    hieramas baselines --task mmlu_redux --pool replay-mmlu-redux --methods single vote oracle \
        --limit 500 --json out.json

Fitted methods (`router`, `cascade`, `best_single`, `best_per_task`, `best_design_per_task`,
`knn_router`, `contrastive_router`, see `hieramas_gnn/eval/routers.py`) learn
from questions the evaluation never sees: with `--train-size N` (and `--val-size`) the split is
drawn as in training (`--split-by`, seeded by `--seed`; `tasks/splits.py`), they are fitted on
its train (+ val) part, and *every* method is evaluated on the rest (the first `--limit` of it):

    hieramas baselines --task math_l5 --pool replay-math-l5 --train-size 300 --val-size 50 \
        --methods best_single router cascade vote oracle --cost-lambda 200 --reward-shape exp

Columns: method, accuracy, $ per query, tokens per query, calls per query, p50 latency (ms),
failed episodes. JSON: {"task", "backend", "n", "budget_stopped", "results": [{"method", "accuracy", "cost_usd",
"tokens", "calls", "latency_ms_p50", "n", "n_failed"}]}. Method names are listed in
`hieramas_gnn/eval/baselines.py`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hieramas_gnn.commands.common import (
    BUDGET_EXIT,
    add_backend_args,
    backend_name,
    backend_settings,
    budget_message,
    budget_stopped,
    check_out_file,
    command_client,
    make_ray_runner,
    run_baselines_ray,
)
from hieramas_gnn.distributed.options import add_executor_args, check_executor_args
from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.baselines import (
    FITTED,
    BaselineConfig,
    Baselines,
    expand_methods,
    result_rows,
    run_baselines,
)
from hieramas_gnn.eval.routers import fit_routed_baselines, query_embedder
from hieramas_gnn.guards import check_apart, check_json_output, dumps
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.splits import split_questions


RESULTS_KEYS = ("task", "backend", "n", "results")  # what `--json` writes (and `hieramas eval --out`)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "baselines", help="run single-LLM, CoT, self-consistency, MoA, debate, vote, fixed-DAG and oracle baselines",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task name (see `hieramas tasks`)")
    p.add_argument("--pool", required=True, help="pool name (data/pools/<name>.yaml) or path")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   help="methods (space or comma separated): single[:<model>], cot[:<model>], "
                        "sc[:<model>], moa, moa2, debate, vote, chain, star, complete, layered, "
                        "random, oracle (default: all; a bare per-model method means every model)")
    p.add_argument("--limit", type=int, default=None, help="first N questions only")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--data", default=None, help="question file to load instead of the task's default")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the rows as JSON")
    p.add_argument("--cache", default=None, metavar="PATH", help="rollout cache (SQLite); default: none")
    p.add_argument("--cache-mode", default="rw", choices=("rw", "replay", "off"),
                   help="rollout cache mode (rw: read and write; replay: a miss is an error; off: no cache)")
    p.add_argument("--max-in-flight", type=int, default=32, help="LLM calls in flight at once")
    p.add_argument("--budget", type=float, default=None, help="spend cap in USD for this run")
    add_backend_args(p)
    p.add_argument("--anchor", default=None,
                   help="synthesizer/decision/aggregator model (default: the pool model with the best "
                        "single accuracy on up to 200 train+val questions not being evaluated)")
    p.add_argument("--sc-samples", type=int, default=5, help="samples per query for sc:<model>")
    p.add_argument("--fixed-k", type=int, default=3, help="proposers per role in the fixed topologies")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-topology baseline")
    p.add_argument("--train-size", type=int, default=0,
                   help="questions the fitted methods (router, cascade, best_single) learn from; "
                        "evaluation then runs on the questions outside train and val")
    p.add_argument("--val-size", type=int, default=0, help="validation questions of the fitted methods")
    p.add_argument("--split-by", default="random", choices=("random", "domain", "consecutive"),
                   help="how train/val/test are drawn (seeded by --seed; default: random, stratified by domain)")
    p.add_argument("--cost-lambda", type=float, default=0.0,
                   help="λ (1/USD) of the reward the fitted methods maximise (default 0: accuracy)")
    p.add_argument("--reward-shape", default="exp", choices=("linear", "exp", "hieramas"),
                   help="reward shape the fitted methods maximise (train/rewards.py)")
    p.add_argument("--embedder", default="minilm", choices=("minilm", "hashing"),
                   help="query encoder of the router (default: minilm, offline)")
    p.add_argument("--vote-order", default=None, metavar="M1,M2,...",
                   help="tie-break priority of `vote`, every pool model once (default: pool order)")

    add_executor_args(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    import asyncio


    check_executor_args(args)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be >= 1, got {args.limit}")
    if args.max_in_flight < 1:
        raise UserError(f"--max-in-flight must be >= 1, got {args.max_in_flight}")
    if args.sc_samples < 1 or args.fixed_k < 1:
        raise UserError("--sc-samples and --fixed-k must be >= 1")
    if args.budget is not None and not (0 <= args.budget < float("inf")):
        raise UserError(f"--budget must be a finite number >= 0, got {args.budget}")
    check_out_file(args.json_out, "--json")

    check_apart(args.json_out, "--json", {"--cache": args.cache, "--data": args.data, "--pool": args.pool})
    check_json_output(args.json_out, "--json", RESULTS_KEYS, "an earlier `hieramas baselines` JSON")
    task = get_task(args.task)
    pool = load_pool(args.pool)
    methods = expand_methods(_split(args.methods), pool.names)
    cfg = BaselineConfig(sc_samples=args.sc_samples, fixed_k=args.fixed_k, anchor=args.anchor,
                         seed=args.seed,
                         vote_order=tuple(args.vote_order.split(",")) if args.vote_order else None)
    baselines = Baselines(task, get_roleset(task.family), pool.names, cfg)
    fitted = [m for m in methods if m in FITTED]
    if fitted and args.train_size < 1:
        raise UserError(f"--methods {', '.join(fitted)}: fitted methods need --train-size N (training questions)")
    client = command_client(pool, args.cache, args.cache_mode, args.max_in_flight, args.budget,
                         backend_settings(args))
    if args.train_size > 0:
        train, val, questions = _split_for_fitting(args, task)
        if fitted:
            routed = asyncio.run(fit_routed_baselines(
                baselines, train, val, client, _embedder(args.embedder), _reward(args), args.max_in_flight,
                seed=args.seed, methods=fitted))
            print(f"fitted on {len(train)} train + {len(val)} val questions: {routed.describe()}", file=sys.stderr)
    else:
        questions = task.load(path=args.data, split=args.split, limit=args.limit)
    if not questions:
        raise UserError(f"task {args.task}: no questions loaded (split {args.split!r})")
    if args.executor == "ray":  # the runner's bar: episodes, calls, hits, $ spent and left
        runner = make_ray_runner(args, pool, args.cache, args.cache_mode, progress=True)
        try:
            traces = run_baselines_ray(runner, baselines, methods, questions)
        finally:
            runner.close()
    else:
        with _progress(len(methods) * len(questions)) as tick:
            traces = asyncio.run(run_baselines(baselines, methods, questions, client,
                                               args.max_in_flight, on_done=tick))
        from hieramas_gnn.progress import phase

        phase(f"llm: {client.stats.cost_line()}")
    rows = result_rows(traces)
    stopped = budget_stopped(client)
    report = {"task": task.name, "backend": backend_name(pool), "n": len(questions), "results": rows,
              "budget_stopped": stopped, "anchor": baselines.anchor, "anchor_ranking": baselines.anchor_accuracy}
    if baselines.anchor_accuracy:
        print(f"anchor {baselines.anchor}: best single accuracy on train+val questions "
              f"({baselines.anchor_accuracy[baselines.anchor]:.3f})"
              + (" - every one of them is also evaluated (pass --anchor or --limit to hold some out)"
                 if baselines.anchor_overlap else ""))
        calls = [c for t in baselines.anchor_traces for c in t.calls if not c.cache_hit]
        report["anchor_cost_usd"] = sum(c.cost_usd for c in calls)
        print(f"ranking the pool: {len(calls)} calls, ${report['anchor_cost_usd']:.4f} (in no method's row)")
    print_table(report)
    _print_failures(traces)
    if args.json_out:
        write_json(report, args.json_out)
    if stopped:
        n_failed = sum(r.get("n_failed", 0) for r in rows)
        print(f"hieramas baselines: {budget_message(client, args.budget, n_failed, sum(r['n'] for r in rows))}",
              file=sys.stderr)
        return BUDGET_EXIT
    return 0


def _split_for_fitting(args: argparse.Namespace, task: Any) -> tuple[list, list, list]:
    """(train, val, test): the split drawn as in training; test is the rest (its first --limit)."""
    if args.val_size < 0:
        raise UserError(f"--val-size must be >= 0, got {args.val_size}")
    questions = task.load(path=args.data, split=args.split)
    rest = len(questions) - args.train_size - args.val_size
    if rest < 1:
        raise UserError(f"--train-size + --val-size = {args.train_size + args.val_size} leaves no test "
                        f"questions (split {args.split!r} has {len(questions)})")
    test_size = min(rest, args.limit) if args.limit else rest
    split = split_questions(questions, (args.train_size, args.val_size, test_size), split_by=args.split_by,
                            seed=args.seed)
    return split.train, split.val, split.test


def _embedder(kind: str):
    """texts -> [Q, F] numpy query embeddings for the router."""
    return query_embedder(kind, None if kind == "hashing" else "runs/embeddings")


def _reward(args: argparse.Namespace):
    """The (correct, cost) -> reward the fitted methods maximise."""
    from hieramas_gnn.train.rewards import Reward  # lazy: loads torch

    return Reward(args.reward_shape, args.cost_lambda)


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['task']} · {report['backend']} · n = {report['n']}")
    width = max([len("method")] + [len(r["method"]) for r in report["results"]])
    table.add_column("method", no_wrap=True, min_width=width)
    for col in ("accuracy", "$/query", "tokens/q", "calls/q", "p50 ms", "failed"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["results"]:
        table.add_row(r["method"], f"{r['accuracy']:.4f}", f"{r['cost_usd']:.6f}",
                      f"{r['tokens']:.1f}", f"{r['calls']:.2f}", f"{r['latency_ms_p50']:.1f}",
                      str(r.get("n_failed", 0)))
    Console(width=max(100, width + 70)).print(table)


def write_json(report: dict[str, Any], path: str) -> None:
    from pathlib import Path

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(report, indent=2) + "\n", encoding="utf-8")


def _split(methods: list[str] | None) -> list[str] | None:
    if not methods:
        return None
    return [m for chunk in methods for m in chunk.split(",") if m]


def _print_failures(traces: dict[str, list[Any]]) -> None:
    failed = [(m, t) for m, ts in traces.items() for t in ts if t.failed]
    if failed:
        print(f"{len(failed)} episodes failed (counted as not correct); first reasons:", file=sys.stderr)
        for m, t in failed[:5]:
            print(f"  {m} {t.question_id}: {t.failure_reason}", file=sys.stderr)


def _progress(total: int):
    """The progress of the episodes on stderr (`hieramas_gnn/progress.py`: a bar on a terminal,
    a line every few seconds elsewhere; silent under --quiet)."""
    from hieramas_gnn.progress import bar

    return bar(total, "baselines")
