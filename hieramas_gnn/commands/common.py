"""Plumbing the commands share: output checks, budget messages, the client and Ray runner of the
evaluation commands, the offline-backend flags.

Checks run before a command does any work, so a bad output path never costs a finished run.

`check_out_file(path, flag)`: the path a command will write (a JSON file, a summary) must not be
a directory, nor sit under a file; its parent folder is created later by the writer.
`budget_stop(client, n, ...)`: the message printed when a `--budget` stopped a run (exit code 3),
so an accuracy computed over refused calls is never reported as a measurement.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hieramas_gnn.build import ClientSettings, make_client
from hieramas_gnn.distributed.runner import make_runner
from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.baselines import SharedCalls
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.types import BackendSettings, ReplaySettings, SimSettings

BUDGET_EXIT = 3  # as `hieramas collect`: the run stopped at the budget; completed calls are cached


def check_out_file(path: str | None, flag: str) -> None:
    """UserError when `path` cannot become a file (a directory, or a file in its way)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
            break


def check_positive(value: int | None, flag: str) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise UserError(f"{flag} must be at least 1, got {value}")


def budget_stopped(client: Any) -> bool:
    """Whether the client refused calls because of its spend cap."""
    return getattr(client.stats, "refused", 0) > 0


def budget_message(client: Any, budget: float | None, n_failed: int, n: int) -> str:
    return (f"budget ${budget} reached: {client.stats.refused} calls refused, {n_failed} of {n} episodes did "
            f"not complete (counted as failed, so the accuracies above are not a measurement). "
            f"Raise --budget and re-run: completed calls are cached.")


def command_client_config(max_in_flight: int, budget: float | None) -> ClientConfig:
    """The client limits of the evaluation commands: `max_in_flight` calls overall and per model."""
    return ClientConfig(max_concurrency=max_in_flight, per_model_concurrency=max_in_flight, budget_usd=budget)

def command_client(pool: Any, cache_path: str | None, cache_mode: str, max_in_flight: int,
                   budget: float | None, backend: BackendSettings | None = None) -> Any:
    """The project's LLM client over the pool, with the rollout cache when one is given;
    `backend`: the settings of sim/replay calls (default: their defaults)."""
    settings = ClientSettings(cache_path=cache_path if cache_path and cache_mode != "off" else None,
                              cache_mode=cache_mode if cache_path else "off",
                              config=command_client_config(max_in_flight, budget),
                              backend=backend or BackendSettings())
    return make_client(settings, pool)

def make_ray_runner(args: argparse.Namespace, pool: Any, cache_path: str | None, cache_mode: str,
                    task: Any = None, roleset: Any = None, progress: bool = True) -> Any:
    """The `--executor ray` runner of these commands (same limits as `command_client`)."""
    return make_runner("ray", args.ray_address, task=task, roleset=roleset, pool=pool,
                       cache_path=cache_path, cache_mode=cache_mode if cache_path else "off",
                       client_config=command_client_config(args.max_in_flight, args.budget),
                       backend=backend_settings(args),
                       max_in_flight=args.max_in_flight, workers=args.ray_workers,
                       progress=progress)

def run_baselines_ray(runner: Any, baselines: Any, methods: list[str], questions: list[Any],
                      on_done: Any = None) -> dict[str, list[Any]]:
    """`eval.baselines.run_baselines` on Ray workers: the jobs of one question share a worker
    and a `SharedCalls` wrapper there, so each distinct request is paid once, as locally."""
    jobs = [baselines.job(m, q) for m in methods for q in questions]
    traces = runner.run_jobs(jobs, keys=[q.id for _ in methods for q in questions],
                             wrap=SharedCalls, on_done=on_done)
    n = len(questions)
    return {m: traces[i * n:(i + 1) * n] for i, m in enumerate(methods)}

SIM_LATENCY_HELP = ("simulated latency of sim/ models: lognormal (really awaited), off, or a fixed number of ms "
                    "(default: what the policy bundle was trained with, else lognormal)")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """`--sim-latency` and `--sim-seed`: the `sim/` settings (part of the cache key of sim calls;
    by default a bundle's own, so its questions hit the cache its training filled)."""
    p.add_argument("--sim-latency", default=None, metavar="MODE", help=SIM_LATENCY_HELP)
    p.add_argument("--sim-seed", type=int, default=None,
                   help="seed of the sim/ and replay/ backends (default: the bundle's, else 0)")


def sim_latency(raw: Any, seed: int = 0) -> SimSettings:
    """The `SimSettings` of a `--sim-latency` value: lognormal, off or a number of ms."""
    text = str(raw).strip().lower()
    if text in ("lognormal", "off"):
        return SimSettings(seed=seed, latency=text)
    try:
        ms = float(text)
    except ValueError:
        raise UserError(f"--sim-latency must be lognormal, off or a number of ms, got {raw!r}") from None
    try:
        return SimSettings(seed=seed, latency="fixed", fixed_latency_ms=ms)
    except Exception as exc:  # noqa: BLE001 - ConfigError of a negative / infinite value
        raise UserError(f"--sim-latency {raw!r}: {exc}") from None


def backend_settings(args: argparse.Namespace, recorded: BackendSettings | None = None) -> Any:
    """The `BackendSettings` of `--sim-latency` / `--sim-seed`; what either leaves unset comes
    from `recorded` (a bundle's, `bundle_trust.recorded_backend`), else the defaults."""
    base = recorded or BackendSettings()
    seed = args.sim_seed if getattr(args, "sim_seed", None) is not None else base.sim.seed
    if getattr(args, "sim_latency", None) is None:
        sim = SimSettings(seed=seed, latency=base.sim.latency, fixed_latency_ms=base.sim.fixed_latency_ms,
                          behaviour=base.sim.behaviour)
    else:
        sim = sim_latency(args.sim_latency, seed)
    replay_seed = args.sim_seed if getattr(args, "sim_seed", None) is not None else base.replay.seed
    return BackendSettings(sim=sim, replay=ReplaySettings(seed=replay_seed, wrong_answers=base.replay.wrong_answers))


def backend_name(pool: Any) -> str:
    """The litellm providers of the pool's models (`replay`, `sim`, `openai+anthropic`, ...)."""
    providers = dict.fromkeys(spec.provider or spec.litellm_model for spec in pool.models)
    return "+".join(providers)

