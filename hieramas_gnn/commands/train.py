"""`hieramas train --config experiments/configs/NAME.yaml [key=value ...]`: stage-1 training.

The run folder is `run.out_dir` (default `runs/{task}__{name}__{seed}`). Running the same command
again on the same folder resumes from its last checkpoint (policy, optimizer, step, RNG state);
every LLM call already made is in the rollout cache, so nothing is paid twice. The resolved
config is written to `config.yaml` in the run folder; metrics to `metrics.jsonl` (and wandb).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train the mixture selector (stage 1) from a YAML config",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (experiments/configs/*.yaml)")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                   help="dotted overrides, e.g. stage1.lr=3e-4 run.seed=2 credit.baseline=none "
                        "(--out / --wandb may also appear among them)")
    p.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default=None,
                   help="wandb mode (default: tracking.wandb, i.e. online with WANDB_API_KEY, else offline)")
    p.add_argument("--out", default=None, help="run folder (same as run.out_dir=...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hieramas_gnn.config import load_config

    overrides = _split_flags(args, list(args.overrides))
    if args.wandb:
        overrides.append(f"tracking.wandb={args.wandb}")
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    cfg = load_config(args.config, overrides)
    result = train_from_config(cfg)
    print(f"stage 1 done: {result.step} steps, best val reward {result.best_val_reward:.4f} "
          f"at step {result.best_step}; run folder {cfg.run.dir}")
    return 0


def _split_flags(args: argparse.Namespace, tokens: list[str]) -> list[str]:
    """Take `--out DIR` / `--wandb MODE` out of the override list (argparse stops at the first
    positional, so flags written after overrides land there)."""
    from hieramas_gnn.errors import UserError

    out = []
    it = iter(tokens)
    for tok in it:
        flag, eq, value = tok.partition("=")
        if flag in ("--out", "--wandb"):
            value = value if eq else next(it, None)
            if value is None:
                raise UserError(f"{flag} needs a value")
            setattr(args, flag[2:], value)
        else:
            out.append(tok)
    return out


def train_from_config(cfg, client=None):
    """Build everything from `cfg` and run stage 1 (resuming when the run folder has a checkpoint)."""
    from hieramas_gnn.config_io import dump_yaml
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.tracking import Tracker
    from hieramas_gnn.train.setup import build_setup
    from hieramas_gnn.train.stage1 import train_stage1

    ensure_offline_defaults()
    cfg.run.dir.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, cfg.run.dir / "config.yaml")
    setup = build_setup(cfg, client=client)
    with Tracker(cfg) as tracker:
        return train_stage1(cfg, setup, tracker)
