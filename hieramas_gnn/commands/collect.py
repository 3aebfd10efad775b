"""`hieramas collect --config FILE.yaml`: run designs over queries and fill the rollout cache.

The config (paths are relative to the config file's folder; every field is documented in
docs/LLM.md):

    task: gsm8k                 # task name (`hieramas tasks`)
    split: test                 # split passed to Task.load
    data: null                  # optional question file (jsonl / jsonl.gz) for Task.load
    limit: 50                   # first N questions (null: all)
    pool: openrouter-example    # pool name (data/pools/<name>.yaml) or a path
    designs:                    # what runs on every question; each item is one of
      - single                  #   a baseline method of `hieramas baselines` (single:<m>, vote, chain, ...)
      - designs/best.json       #   a Design JSON/YAML file
      - {roles: [...], mixtures: [...], edges: [...], decision: m}   # an inline Design
    samples: 1                  # Designs run with sample indices 0..samples-1
    temperature: 0.0
    cache: runs/cache.sqlite    # the rollout cache (mode rw)
    budget_usd: 5.0             # spend cap of this run (null: none); hits are free
    max_in_flight: 32           # calls in flight across all queries (the executor's bound)
    client: {per_model_concurrency: 8, rpm: null, max_retries: 4, timeout_s: 120}
    seed: 0                     # seeds the `random` baseline topology
    out: null                   # optional traces jsonl

`--executor ray [--ray-address ADDR] [--ray-workers N]` runs the jobs on Ray workers; this
process stays the one writer of the cache (docs/DISTRIBUTED.md).

Resumable: every completed call is committed to the cache the moment it returns, so re-running
the same config after a crash (or a budget stop) replays those calls as free hits and pays only
for the rest. Exit codes: 0 all done, 1 some traces failed, 3 the budget stopped the run.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterator

from hieramas_gnn.commands.common import check_out_file
from hieramas_gnn.config import CollectConfig, load_section
from hieramas_gnn.distributed.options import add_executor_args, check_executor_args
from hieramas_gnn.distributed.runner import make_runner
from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.eval.baselines import BaselineConfig, Baselines, expand_methods
from hieramas_gnn.guards import (
    check_apart,
    check_overwrite,
    json_safe,
    looks_like_json_object,
)
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.executor import Job, run_many
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.paths import atomic_write_text
from hieramas_gnn.redact import redact
from hieramas_gnn.tasks import get_task


def load_collect_config(path: str | Path) -> CollectConfig:
    """Read and validate a collect YAML through the config machinery (`config.load_section`);
    errors name the file and the field; relative paths are resolved against the file's folder."""
    path = Path(path)
    where = f"collect config {path.name}"
    if not path.exists():
        raise ConfigError(f"{where}: no such file {path}")
    cfg = load_section(CollectConfig, path, where)
    base = path.resolve().parent
    for key in ("data", "cache", "out"):
        if getattr(cfg, key):
            setattr(cfg, key, str(base / getattr(cfg, key)))
    if cfg.pool.endswith((".yaml", ".yml")) or "/" in cfg.pool:
        cfg.pool = str(base / cfg.pool)
    cfg.designs = [str(base / d) if isinstance(d, str) and d.endswith((".json", ".yaml", ".yml")) else d
                   for d in cfg.designs]
    return cfg


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect", help="run designs over queries and fill the rollout cache (resumable)",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="collect config YAML (see docs/LLM.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--summary", help="also write the run summary as JSON to this file")

    add_executor_args(p)
    p.set_defaults(func=run)


def build_jobs(cfg: CollectConfig, pool: Any, keys: list[str] | None = None) -> list[Any]:
    """One job per (design, question, sample): Designs via the executor, methods via baselines.
    `keys`, when given, receives each job's question id (the Ray executor's shard key)."""
    task = get_task(cfg.task)
    questions = task.load(cfg.data, split=cfg.split, limit=cfg.limit)
    roleset = get_roleset(task.family)
    baselines = Baselines(task, roleset, pool.names,
                          BaselineConfig(temperature=cfg.temperature, seed=cfg.seed, anchor=cfg.anchor))
    jobs: list[Any] = []
    for i, entry in enumerate(cfg.designs):
        try:
            if isinstance(entry, str) and not entry.endswith((".json", ".yaml", ".yml")):
                for method in expand_methods([entry], pool.names):
                    jobs += [baselines.job(method, q) for q in questions]
                    if keys is not None:
                        keys.extend(q.id for q in questions)
                continue
            design = _load_design(entry).validate(roleset, pool.names)
        except (UserError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"collect config: designs[{i}]: {exc}") from exc
        jobs += [Job(design, q, task, roleset, sample_index=s, temperature=cfg.temperature)
                 for q in questions for s in range(cfg.samples)]
        if keys is not None:
            keys.extend(q.id for q in questions for _ in range(cfg.samples))
    return jobs


def _load_design(entry: Any) -> Any:
    import yaml


    if isinstance(entry, dict):
        return Design.from_dict(entry)
    path = Path(entry)
    if not path.exists():
        raise ValueError(f"no such design file {path}")
    return Design.from_dict(yaml.safe_load(path.read_text()))  # JSON is YAML


def run(args: Any) -> int:
    import asyncio


    check_executor_args(args)

    check_out_file(args.summary, "--summary")
    cfg = load_collect_config(args.config)
    check_out_file(cfg.out, "collect config out")

    inputs = {"cache": cfg.cache, "data": cfg.data, "pool": cfg.pool if Path(cfg.pool).suffix else None,
              "--config": args.config}
    check_apart(cfg.out, "collect config out", inputs)
    check_apart(args.summary, "--summary", {**inputs, "out": cfg.out})

    check_overwrite(cfg.out, "collect config out", lambda line: looks_like_json_object(line, "question_id", "calls"),
                    "a traces jsonl of `hieramas collect`")
    check_overwrite(args.summary, "--summary", lambda line: looks_like_json_object(line), "a JSON summary")
    pool = load_pool(cfg.pool)
    keys: list[str] = []
    jobs = build_jobs(cfg, pool, keys)
    config = replace(cfg.client, budget_usd=cfg.budget_usd)
    if args.executor == "ray":  # workers run the jobs; this process writes the cache

        runner = make_runner("ray", args.ray_address, task=None, roleset=None, pool=pool,
                             cache_path=cfg.cache, cache_mode="rw", client_config=config,
                             backend=cfg.backend, seed=cfg.seed,
                             max_in_flight=cfg.max_in_flight, workers=args.ray_workers)
        try:
            with _progress(jobs, runner, cfg, args.quiet) as on_done:
                traces = runner.run_jobs(jobs, keys=keys, on_done=on_done)
            summary = _summary(traces, runner, runner.cache)
        finally:
            runner.close()
    else:
        with RolloutCache(cfg.cache, "rw") as cache:
            client = LLMClient(pool, cache, config, backend=cfg.backend, seed=cfg.seed)
            with _progress(jobs, client, cfg, args.quiet) as on_done:
                traces = asyncio.run(run_many(jobs, client, max_in_flight=cfg.max_in_flight,
                                              on_done=on_done))
            summary = _summary(traces, client, cache)
    print(_summary_line(summary))
    if args.summary:
        atomic_write_text(args.summary, json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")
    if summary["budget_stopped"]:
        print(f"hieramas collect: budget ${cfg.budget_usd} reached; {summary['failed']} traces "
              f"not complete. Raise budget_usd and re-run: completed calls are cached.")
        return 3
    return 1 if summary["failed"] else 0


@contextmanager
def _progress(jobs: list[Any], source: Any, cfg: CollectConfig, quiet: bool) -> Iterator[Any]:
    """A progress bar over the jobs (calls, hits, $ spent, $ left of `source`: a client or a
    runner) and the traces jsonl; yields the per-trace callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    tmp = Path(cfg.out).with_name(f".{Path(cfg.out).name}.{os.getpid()}.tmp") if cfg.out else None
    out = open(tmp, "w", encoding="utf-8") if tmp else None  # renamed over cfg.out once complete
    columns = [TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, disable=quiet, transient=False) as progress:
        bar = progress.add_task("collect", total=len(jobs), info=_info(source))

        def on_done(trace: Any) -> None:
            if out is not None:
                out.write(trace.to_json() + "\n")
                out.flush()
            progress.update(bar, advance=1, info=_info(source))

        try:
            yield on_done
            if out is not None:
                out.close()
                os.replace(tmp, cfg.out)
        finally:
            if out is not None:
                out.close()
                tmp.unlink(missing_ok=True)


def _info(client: Any) -> str:
    s = client.stats
    left = "∞" if client.budget_left is None else f"${client.budget_left:.4f}"
    return f"calls {s.calls} · hits {s.cache_hits} · spent ${s.spent_usd:.4f} · left {left}"


def _summary(traces: list[Any], client: Any, cache: Any) -> dict[str, Any]:
    failed = [t for t in traces if t.failed]
    stats = asdict(client.stats)
    return {
        "traces": len(traces), "failed": len(failed),
        "budget_stopped": bool(failed) and client.stats.refused > 0,
        "first_failure": redact(failed[0].failure_reason) if failed else None,
        "provider_calls": stats["calls"], "attempts": stats["attempts"],
        "retries": stats["retries"], "cache_hits": stats["cache_hits"],
        "spent_usd": stats["spent_usd"], "budget_left_usd": client.budget_left,
        "cache_path": str(cache.path), "cache_records": len(cache),
    }


def _summary_line(s: dict[str, Any]) -> str:
    return (f"collect: {s['traces']} traces ({s['failed']} failed), {s['provider_calls']} provider "
            f"calls, {s['cache_hits']} cache hits, ${s['spent_usd']:.4f} spent; cache "
            f"{s['cache_path']} holds {s['cache_records']} records")
