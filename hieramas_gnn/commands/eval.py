"""`hieramas eval --policy DIR [--task T] ...`: evaluate an exported policy (or a fixed design) on
held-out questions, optionally next to baselines, and write the report.

Which questions: by default the bundle's own held-out questions: the test part of the split its
training drew (recorded in the bundle), of the task it was trained on (a built-in task, or your
own jsonl task, whose questions the bundle carries). The command says which split and how many.
`--task` / `--split` choose others explicitly: `--split train|val|test` is a split of the task's
source (a jsonl task file is one split: all its rows); any of them that the policy trained on
is reported (`trained_on` in results.json, a warning on stderr), so such numbers are never read
as held-out ones. `--offset` / `--limit` cut the chosen list.

The policy decides per query with the one design-choice function (`policy/choose.py`) under the
route the bundle recorded as trained (`classifier`: the best of K candidate DAGs by the
graph-score head; `edges`: the edge head's DAG): the same designs `hieramas run` and
`hieramas serve` choose for the same questions.
A cost-conditioned bundle (`reward.cost_lambda_range`) is evaluated at its default cost weight,
or: `--cost-lambda L1 L2 ...` evaluates it at each λ (one row per λ: the whole frontier from one
bundle in one report); `--max-cost-usd X` at the most accurate grid point whose measured $/query
fits X; `--target-cost-per-query X` chooses per query the grid point to run so that the mean
expected $/query over the evaluated questions meets X (`policy.cost.plan_target_cost`: a mix of
the two neighbouring frontier points, moving the queries whose design costs least extra first),
and reports the planned and the realised $/query. `--budget` is a different thing: a hard cap
on what this command may spend. `--max-calls N` / `--max-rounds N` limit every design the policy
chooses to N LLM calls / N sequential rounds of calls (`mas.limits`, docs/BUDGETS.md); each policy
row (and results.json) reports them under `limits` with the most calls and rounds any design used.
`--design FILE` evaluates one fixed Design (JSON, as written by `hieramas run`/the report) on
every query instead (then `--task` is required). Rows have the `hieramas baselines` columns;
`--out DIR` writes `report.md`, `pareto.png`, `topology.png` and `results.json` (the policy is
method `hieramas`). Progress goes to stderr (`--quiet` silences it).

Example: hieramas eval --policy runs/demo/policy --baselines single,moa --out runs/eval
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
from hieramas_gnn.eval.evaluate import ExecutorRunner, summarize
from hieramas_gnn.guards import check_apart, check_json_output, check_report_out
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.limits import check_limit, design_calls, design_rounds
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task

MAX_QUESTIONS = 1_000_000  # offset + limit cap: a typo like --offset 100000000 must not build 10^8 questions
HELD_OUT = "held-out"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate an exported policy (or a design) on held-out questions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--policy", help="policy bundle folder (from `hieramas train` / `demo` / `export`)")
    src.add_argument("--design", help="a Design JSON file, run as-is on every question (needs --task)")
    p.add_argument("--task", default=None,
                   help="task name (`hieramas tasks list`) or task file (.task.yaml); default: the bundle's task")
    p.add_argument("--pool", default=None, help="pool name or YAML (default: the bundle's pool; with --design: sim)")
    p.add_argument("--data", default=None, help="local question file (default: the task's source)")
    p.add_argument("--split", default=None, metavar="SPLIT",
                   help=f"which questions: `{HELD_OUT}` (default with a bundle of this task: the test questions its "
                        "training held out, recorded in the bundle) or a split of the task's source (`train`, `val`, "
                        "`test`; a jsonl task file is one split: all its rows; default with --design: test)")
    p.add_argument("--offset", type=int, default=0, help="skip this many of the chosen questions")
    p.add_argument("--limit", type=int, default=None,
                   help=f"evaluate at most this many (default: all {HELD_OUT} questions, else 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the `random` baseline's DAGs")
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.add_argument("--baselines", default=None, help="comma-separated baseline methods to add (e.g. single,moa)")
    p.add_argument("--cache", default="runs/rollouts.sqlite", help="rollout cache (SQLite)")
    p.add_argument("--cache-mode", default="rw", choices=("rw", "replay", "off"), help="rollout cache mode")
    p.add_argument("--budget", type=float, default=None, help="spend cap in USD for this command")
    cost = p.add_mutually_exclusive_group()
    cost.add_argument("--cost-lambda", nargs="+", default=None, metavar="L",
                      help="a cost-conditioned bundle: evaluate it at each of these cost weights λ (1/USD; one "
                           "row each)")
    cost.add_argument("--max-cost-usd", default=None, metavar="X",
                      help="a cost-conditioned bundle: the most accurate point whose measured $/query is <= X")
    cost.add_argument("--target-cost-per-query", default=None, metavar="X",
                      help="a cost-conditioned bundle: per query designs whose mean expected $/query over the "
                           "evaluated questions meets X (not a spend cap: see --budget); reports the realised $/query")
    p.add_argument("--max-calls", default=None, metavar="N",
                   help="with --policy: every design makes at most N LLM calls, decision included (the policy's best "
                        "candidate within the limit, docs/BUDGETS.md)")
    p.add_argument("--max-rounds", default=None, metavar="N",
                   help="with --policy: every design takes at most N sequential rounds of calls (the latency limit, "
                        "docs/BUDGETS.md)")
    p.add_argument("--max-in-flight", type=int, default=32, help="LLM calls in flight at once")

    add_backend_args(p)
    p.add_argument("--out", default=None, help="write report.md, results.json and plots here")

    add_executor_args(p)

    add_trust_args(p)
    p.set_defaults(func=run)


def _check_cut(args: argparse.Namespace, limit: int | None) -> None:
    if args.offset < 0 or (limit is not None and limit < 1):
        raise UserError(f"--limit must be >= 1 and --offset >= 0, got {limit} / {args.offset}")
    if args.offset + (limit or 0) > MAX_QUESTIONS:
        raise UserError(f"--offset {args.offset} + --limit {limit} is past {MAX_QUESTIONS:,} questions, "
                        "more than any task holds")


def load_questions(args: argparse.Namespace, task: Any) -> list:
    """The questions of `--split` (a split of the task's source, default `test`), cut by
    `--offset` / `--limit` (default 100)."""
    limit = args.limit if args.limit is not None else 100
    _check_cut(args, limit)
    split = args.split or "test"
    qs = task.load(args.data, split=split, limit=args.offset + limit)[args.offset:]
    if not qs:
        raise UserError(f"task {task.name}: no questions after --offset {args.offset} (split {split!r})")
    return qs


def held_out_questions(args: argparse.Namespace, task: Any, meta: Any) -> list | None:
    """The bundle's recorded held-out (test) questions of `task`, cut by `--offset` / `--limit`;
    None when the bundle records none for this task (an explicit `--split held-out` is then an
    error)."""
    recorded = (meta.training or {}).get("split") if meta is not None else None
    same_task = meta is not None and task.name == meta.task
    if not same_task or not isinstance(recorded, dict) or not isinstance(recorded.get("test"), list):
        if args.split == HELD_OUT:
            why = (f"it was trained on task {meta.task!r}, not {task.name!r}" if meta is not None and not same_task
                   else "it records no split (exported by an earlier version, or not from a training run)")
            raise UserError(f"--split {HELD_OUT}: the policy bundle has no held-out questions of task {task.name}: "
                            f"{why}; choose --split train|val|test")
        return None
    _check_cut(args, args.limit)
    source = ((meta.hyperparameters or {}).get("task") or {}).get("split") or "test"
    try:
        every = {q.id: q for q in task.load(args.data, split=source)}
    except UserError as exc:
        raise UserError(f"the bundle's held-out questions are in split {source!r} of task {task.name}, which "
                        f"cannot be read here ({exc}); pass --data FILE, or choose --split") from None
    ids = [str(i) for i in recorded["test"]]
    missing = [i for i in ids if i not in every]
    if missing:
        raise UserError(f"{len(missing)} of the bundle's {len(ids)} held-out questions (e.g. {missing[0]!r}) are not "
                        f"in split {source!r} of task {task.name}{f' ({args.data})' if args.data else ''}: is it the "
                        "data the policy was trained on? Pass --data FILE, or choose --split")
    qs = [every[i] for i in ids]
    end = args.offset + args.limit if args.limit is not None else None
    cut = qs[args.offset:end]
    if not cut:
        raise UserError(f"no questions left after --offset {args.offset} (the bundle holds out {len(qs)})")
    return cut


def trained_on(questions: list, meta: Any) -> int:
    """How many of `questions` were train or val questions of the bundle's recorded split."""
    recorded = (meta.training or {}).get("split") if meta is not None else None
    if not isinstance(recorded, dict) or not questions or questions[0].task != meta.task:
        return 0
    seen = {str(i) for part in ("train", "val") for i in (recorded.get(part) or [])}
    return sum(q.id in seen for q in questions)


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

    from hieramas_gnn.bundle_trust import recorded_backend
    from hieramas_gnn.progress import bar, phase
    from hieramas_gnn.serve.policy import Policy

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
    # a folder holding another command's report (an experiment's, say) is not this command's to replace
    check_json_output(args.out and Path(args.out) / "results.json", "--out",
                      ("task", "backend", "n", "results", "source", "questions"),
                      "an earlier `hieramas eval` report (its results.json)")
    for flag in ("--max-calls", "--max-rounds"):
        setattr(args, flag[2:].replace("-", "_"), check_limit(getattr(args, flag[2:].replace("-", "_")), flag, text=True))
    meta, limits = None, None
    if args.policy:
        policy = Policy.load(args.policy, args.pool, task=args.task, cache=None, embed_cache=args.embed_cache,
                             trust_bundle_endpoints=args.trust_bundle_endpoints, sha256=args.sha256)
        task, roleset, pool, meta = policy.task, policy.roleset, policy.pool, policy.meta
        limits = policy.request_limits(args.max_calls, args.max_rounds)
        rule, method = (lambda qs: policy.chooser.designs(qs, None, limits)), "hieramas"
        backend = backend_settings(args, recorded_backend(meta))
        cost_points = cost_settings(args, policy)
    else:
        if args.max_calls is not None or args.max_rounds is not None:
            raise UserError("--max-calls / --max-rounds need --policy (a --design file runs as it is)")
        if cost_requested(args):
            raise UserError("--cost-lambda / --max-cost-usd / --target-cost-per-query need --policy (a cost-conditioned "
                            "bundle)")
        if not args.task:
            raise UserError("--design needs --task (the questions to run the design on)")
        if args.split == HELD_OUT:
            raise UserError(f"--split {HELD_OUT} needs --policy (a bundle records its held-out questions)")
        task = get_task(args.task)
        roleset = get_roleset(task.family)
        pool = load_pool(args.pool or "sim")
        try:
            fixed = Design.from_json(_read_text(args.design, "--design")).validate(roleset, pool)
        except UserError as exc:
            raise UserError(f"--design {args.design}: {exc}") from None
        rule, method = (lambda qs: [fixed] * len(qs)), f"design:{Path(args.design).stem}"
        backend = backend_settings(args)
    held = held_out_questions(args, task, meta) if args.split in (None, HELD_OUT) and meta is not None else None
    if held is not None:
        questions = held
        which = f"{len(questions)} held-out questions of task {task.name} (the test split the bundle's training held out)"
    else:
        questions = load_questions(args, task)
        which = f"{len(questions)} questions of task {task.name}, split {args.split or 'test'}"
    seen = trained_on(questions, meta)
    if seen:
        which += f"; the policy was trained on {seen} of them"
        print(f"hieramas eval: warning: {seen} of the {len(questions)} questions were train/val questions of the "
              "policy's training: these results are not held-out (omit --split to evaluate its held-out questions)",
              file=sys.stderr, flush=True)
    phase(f"evaluating {method} on {which}")
    if args.policy and cost_points is not None:
        plans = cost_plans(args, policy, questions, cost_points, limits)
    else:
        plans = [(method, rule(questions), {})]
    if limits is not None:  # each policy row says the limits it kept and the most any of its designs needs
        plans = [(name, ds, extra | {"limits": limits.to_dict() | {
            "calls": max(design_calls(d, limits.final_roles) for d in ds),
            "rounds": max(design_rounds(d, limits.final_roles) for d in ds)}}) for name, ds, extra in plans]
    designs = plans[0][1]
    for _, ds, _ in plans:
        for d in ds:
            d.validate(roleset, pool)
    cache_path = None if args.cache_mode == "off" else args.cache
    if args.executor == "ray":
        runner, client = make_ray_runner(args, pool, cache_path, args.cache_mode, task, roleset, backend=backend), None
    else:
        client = command_client(pool, cache_path, args.cache_mode, args.max_in_flight, args.budget, backend)
        runner = ExecutorRunner(client, task, roleset, max_in_flight=args.max_in_flight)
    methods: list[str] = []
    if args.baselines:
        bl = B.Baselines(task, roleset, pool.names, B.BaselineConfig(seed=args.seed))
        methods = B.expand_methods([m.strip() for m in args.baselines.split(",") if m.strip()], pool.names)
    try:
        with bar(len(questions) * (len(plans) + len(methods)), "eval") as shown:
            rows = [summarize(name, runner.run(list(zip(ds, questions)), on_done=shown), **extra)
                    for name, ds, extra in plans]
            if methods:
                traces = (run_baselines_ray(runner, bl, methods, questions, on_done=shown) if args.executor == "ray"
                          else asyncio.run(B.run_baselines(bl, methods, questions, client, args.max_in_flight,
                                                           on_done=shown)))
                rows += B.result_rows(traces)
    finally:
        if args.executor == "ray":
            runner.close()
    print(report.markdown_table(rows, highlight=method))
    for row in rows:
        if "target_cost_usd" in row:
            print(f"hieramas eval: target ${row['target_cost_usd']:.3g}/query: planned ${row['planned_cost_usd']:.3g}, "
                  f"realised ${row['cost_usd']:.3g}/query over {row['n']} questions"
                  + ("" if row["target_feasible"] else " (the target is below the cheapest point: every question "
                     "ran at the cheapest)"), file=sys.stderr)
    stopped = budget_stopped(client) if client is not None else False
    if client is not None:
        phase(f"llm: {client.stats.cost_line()}")
    if args.out:
        out_meta = {"task": task.name, "backend": backend_name(pool), "n": len(questions), "pool": pool.name,
                    "source": args.policy or args.design, "questions": which,
                    "split": HELD_OUT if held is not None else (args.split or "test"),
                    "offset": args.offset, "trained_on": seen, "budget_stopped": stopped,
                    **({} if limits is None else {"limits": limits.to_dict()})}
        if client is not None:
            out_meta.update({"llm_cost": client.stats.cost_line(), "llm": client.stats.cost_metrics()})
        heading = ("held-out questions" if held is not None else f"split {args.split or 'test'} of task {task.name}")
        if seen:
            heading = f"{heading}: NOT held-out, the policy was trained on {seen} of the {len(questions)}"
        report.write_report(args.out, rows, meta=out_meta, design=designs[0], title=f"hieramas eval: {task.name}",
                            results_heading=f"Results ({heading})")
        print(f"wrote {args.out}/report.md, results.json, pareto.png, topology.png")
    if stopped:
        n_failed = sum(r.get("n_failed", 0) for r in rows)
        print(f"hieramas eval: {budget_message(client, args.budget, n_failed, sum(r['n'] for r in rows))}",
              file=sys.stderr)
        return BUDGET_EXIT
    return 0


def cost_requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("cost_lambda", "max_cost_usd", "target_cost_per_query"))


def cost_settings(args: argparse.Namespace, policy: Any) -> Any:
    """None (no cost flag: the bundle's default), or what the cost flags ask, validated: a list of
    λ (`--cost-lambda`, `--max-cost-usd` resolved on the grid) or ("target", X)."""
    from hieramas_gnn.policy.cost import check_cost_number

    if not cost_requested(args):
        return None
    flag = next(f"--{k.replace('_', '-')}" for k in ("cost_lambda", "max_cost_usd", "target_cost_per_query")
                if getattr(args, k, None) is not None)
    if args.cost_lambda is not None:
        lams = [check_cost_number(v, "--cost-lambda") for v in args.cost_lambda]
    elif args.max_cost_usd is not None:
        cap = check_cost_number(args.max_cost_usd, "--max-cost-usd")
    else:
        target = check_cost_number(args.target_cost_per_query, "--target-cost-per-query", positive=True)
    grid = policy.cost_grid
    if grid is None:
        raise UserError(f"{flag}: the policy bundle {args.policy} is not cost-conditioned (it was trained for one cost "
                        "weight); train one with reward.cost_lambda_range")
    if args.cost_lambda is not None:
        return lams
    if args.max_cost_usd is not None:
        return [policy.cost_pick(max_cost_usd=cap).cost_lambda]
    if any(p.get("cost_usd") is None for p in grid.points):
        raise UserError("--target-cost-per-query: the bundle records no measured cost per grid point (re-export it "
                        "with this version of `hieramas train`)")
    return ("target", target)


def cost_plans(args: argparse.Namespace, policy: Any, questions: list, points: Any,
               limits: Any = None) -> list[tuple[str, list, dict]]:
    """(method, designs, extra row fields) per evaluated cost setting of a cost-conditioned bundle
    (each design within `limits`, when given)."""
    from hieramas_gnn.policy.cost import plan_target_cost

    qs = [(q.text, q.meta) for q in questions]
    if isinstance(points, list):
        return [(f"hieramas λ={lam:g}", policy.chooser.designs(qs, lam, limits), {"cost_lambda": lam}) for lam in points]
    target = points[1]
    grid = policy.cost_grid
    per_point = [policy.chooser.designs(qs, lam, limits) for lam in grid.lambdas]  # [K][Q]
    expected = [[grid.designs.get(d.summary(), float(p["cost_usd"])) for d in ds]
                for ds, p in zip(per_point, grid.points)]
    plan = plan_target_cost(expected, [float(p.get("accuracy") or 0.0) for p in grid.points], target,
                            [str(q.id) for q in questions])
    designs = [per_point[k][i] for i, k in enumerate(plan.assign)]
    extra = {"target_cost_usd": target, "planned_cost_usd": plan.planned_cost_usd, "target_feasible": plan.feasible,
             "target_plan": plan.to_dict(grid.lambdas)}
    return [(f"hieramas target ${target:.3g}/query", designs, extra)]


def _read_text(path: str, flag: str) -> str:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{flag} {path}: no such file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{flag} {path}: not UTF-8 text") from None
