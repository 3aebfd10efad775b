"""`hieramas train --config FILE [key=value ...]`: the whole method, resumable.

Runs the pipeline of `hieramas_gnn/train/pipeline.py`: the decision model (configured, or the
best single model on train + val), stage 1 (mixtures, REINFORCE over random DAGs), the topology
route `topology.method` (`classifier`: HieraMAS stage 2, the graph-score head over K candidate
DAGs; `edges`: the policy's edge head trained with REINFORCE), then the export of the bundle
`<run folder>/policy/` (also a wandb artifact). The run folder is `run.out_dir` (default
`runs/{task}__{name}__{seed}`). Running the same command again continues where it stopped; every
LLM call already made is in the rollout cache, so nothing is paid twice. The resolved config is
written to `config.yaml` in the run folder; metrics to `metrics.jsonl` (and wandb). The last
lines say what this invocation paid: `llm: N provider calls, M from the rollout cache, $X spent`
(a resumed run pays only for calls no earlier attempt committed to the cache), and the bundle.
"""

from __future__ import annotations

import argparse

from hieramas_gnn.config import load_config
from hieramas_gnn.distributed.options import (
    EXECUTORS,
    add_executor_args,
    check_executor_args,
)
from hieramas_gnn.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a policy (stage 1 + topology + export) from a YAML config",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (experiments/configs/*.yaml)")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                   help="dotted overrides, e.g. stage1.lr=3e-4 run.seed=2 topology.method=edges "
                        "(--out / --wandb may also appear among them)")
    p.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default=None,
                   help="wandb mode (default: tracking.wandb, i.e. online with WANDB_API_KEY, else offline)")
    p.add_argument("--out", default=None, help="run folder (same as run.out_dir=...)")

    add_executor_args(p, default=None)  # = client.executor / ray_address / ray_workers overrides
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = _split_flags(args, list(args.overrides))
    if args.wandb:
        overrides.append(f"tracking.wandb={args.wandb}")
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    overrides += _executor_overrides(args)
    cfg = load_config(args.config, overrides)
    result = train_from_config(cfg)
    print(f"stage 1: {result.stage1.step} steps, best val reward {result.stage1.best_val_reward:.4f} at step "
          f"{result.stage1.best_step}; topology {result.topology.method} -> route {result.topology.route} "
          f"({result.topology.rollouts} rollouts); decision model {result.setup.decision}")
    stats = llm_stats(result.setup.runner)
    if stats is not None:
        print(f"llm: {stats.calls} provider calls, {stats.cache_hits} from the rollout cache, "
              f"${stats.spent_usd:.4f} spent")
    print(f"bundle: {result.bundle}")
    return 0


def llm_stats(runner) -> object | None:
    """The client counters (`llm.client.ClientStats`) of the run's LLM calls: this process's client,
    or the sum over a Ray runner's workers; None for a runner that keeps none."""
    client = getattr(runner, "client", None)
    return getattr(client, "stats", None) if client is not None else getattr(runner, "stats", None)


def _split_flags(args: argparse.Namespace, tokens: list[str]) -> list[str]:
    """Take `--out DIR` / `--wandb MODE` out of the override list (argparse stops at the first
    positional, so flags written after overrides land there)."""
    out = []
    it = iter(tokens)
    for tok in it:
        flag, eq, value = tok.partition("=")
        if flag in ("--out", "--wandb", "--executor", "--ray-address", "--ray-workers"):
            value = value if eq else next(it, None)
            if value is None:
                raise UserError(f"{flag} needs a value")
            setattr(args, flag[2:].replace("-", "_"), value)
        else:
            out.append(tok)
    return out


def _executor_overrides(args: argparse.Namespace) -> list[str]:
    """`--executor ray [--ray-address A] [--ray-workers N]` as `client.*` overrides: the
    rollout-generating phases (stage 1, stage-2 candidates, counterfactual re-samples, validation,
    the decision model's scan) then run on Ray workers; this process stays the cache's writer."""
    if args.executor is not None and args.executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {args.executor!r}")
    if args.executor is None and (args.ray_address is not None or args.ray_workers is not None):
        raise UserError("--ray-address / --ray-workers only apply with --executor ray")
    if isinstance(args.ray_workers, str):  # came after the overrides: not parsed by argparse
        try:
            args.ray_workers = int(args.ray_workers)
        except ValueError:
            raise UserError(f"--ray-workers must be an integer, got {args.ray_workers!r}") from None
    check_executor_args(args)
    out = [] if args.executor is None else [f"client.executor={args.executor}"]
    if args.ray_address is not None:
        out.append(f"client.ray_address={args.ray_address}")
    if args.ray_workers is not None:
        out.append(f"client.ray_workers={args.ray_workers}")
    return out


def train_from_config(cfg, client=None):
    """The pipeline for `cfg` (resuming every phase from the run folder) -> PipelineResult."""
    from hieramas_gnn.train.pipeline import train_pipeline  # lazy: loads torch

    return train_pipeline(cfg, client=client)
