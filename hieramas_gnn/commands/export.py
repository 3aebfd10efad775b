"""`hieramas export --run RUN_DIR --out DIR`: turn a training run into a policy bundle.

`hieramas train` already exports `<run>/policy/` when it finishes; this command re-exports a run
folder (e.g. one stopped after stage 1, or from another checkpoint). It reads `config.yaml` and
`best.pt`, else `checkpoint.pt` (`--checkpoint` picks another file), rebuilds the policy exactly
as training built it (roles, pool, features incl. the domain vocabulary of the training
questions), loads the weights, the trained topology head and route (`topology.pt` /
`topology.json`; without them the route is `random`: an untrained head never chooses) and the
decision model (`decision.json`), and writes the bundle (`bundle.py`: `policy.safetensors`,
`policy.json`, `embeddings.safetensors`, `checksums.sha256`).
"""

from __future__ import annotations

import argparse
from typing import Any
from pathlib import Path

from hieramas_gnn.build import (
    build_policy,
    build_training,
    choice_settings,
    load_models,
    load_questions,
    load_roles,
)
from hieramas_gnn.bundle import (
    bundle_digest,
    check_bundle_out,
    export_policy,
    portable_roles,
    portable_task,
    run_split,
)
from hieramas_gnn.config import load_config
from hieramas_gnn.config_io import to_dict
from hieramas_gnn.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a trained policy (weights + config + pool) to a folder")
    p.add_argument("--run", required=True, help="run folder of `hieramas train` (has config.yaml and best.pt)")
    p.add_argument("--out", required=True, help="folder to write the bundle into")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file name inside the run folder (default: best.pt, else checkpoint.pt)")
    p.set_defaults(func=run)


def _checkpoint(run_dir: Path, name: str | None) -> Path:
    names = [name] if name else ["best.pt", "checkpoint.pt"]
    for n in names:
        if (run_dir / n).is_file():
            return run_dir / n
    raise UserError(f"--run {run_dir}: no checkpoint ({' or '.join(names)}) in the run folder")


def _load_run_config(run_dir: Path):
    """The run's resolved `config.yaml`, pointed at `run_dir`, on the CPU."""
    return load_config(run_dir / "config.yaml", [f"run.out_dir={run_dir}", "run.device=cpu"])


def export_run(run_dir: str | Path, out_dir: str | Path, checkpoint: str | None = None) -> Path:
    """Export the policy of a `hieramas train` run folder; returns the bundle folder."""
    import torch



    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"--run {run_dir}: not a run folder (no config.yaml; create one with `hieramas train`)")
    check_bundle_out(out_dir, {"--run": run_dir})  # before any work: never the run folder or a folder of other files
    ckpt = _checkpoint(run_dir, checkpoint)
    cfg = _load_run_config(run_dir)
    train, _val, _test, task = load_questions(cfg)
    roleset, roles = load_roles(cfg, task)
    pool, decision = load_models(cfg)
    if cfg.policy.accuracy_hints:  # the hints come from the run's single-model rollouts (in its cache)

        setup = build_training(cfg)
        policy, builder = setup.policy, setup.builder
    else:
        policy, builder = build_policy(cfg, roles, list(pool.models), train)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    try:
        policy.load_state_dict(state["policy"] if "policy" in state else state)
    except RuntimeError as exc:
        raise UserError(f"{ckpt}: weights do not match the run's config.yaml ({exc})") from None
    import json


    if cfg.pool.decision is None and (run_dir / "decision.json").is_file():
        decision = json.loads((run_dir / "decision.json").read_text())["decision"]
    route = "random"
    if (run_dir / "topology.json").is_file() and (run_dir / "topology.pt").is_file():
        topo = json.loads((run_dir / "topology.json").read_text())
        head = policy.score_head if topo["method"] == "classifier" else policy.edge_head
        head.load_state_dict(torch.load(run_dir / "topology.pt", map_location="cpu", weights_only=False))
        route = topo["route"]
    extra = {"task": task.name, "prompt_version": roleset.prompt_version,
             "run": str(run_dir), "checkpoint": ckpt.name, "step": state.get("step")}
    split = run_split(run_dir)
    if split is not None:
        extra["split"] = split

    return export_policy(policy, out_dir, builder=builder, decision=decision, pool_name=cfg.pool.name,
                         extra=extra, choice=choice_settings(cfg, route, decision), family=roleset.family,
                         task=task.name, pool=pool, hyperparameters=to_dict(cfg),
                         task_questions=portable_task(task), role_prompts=portable_roles(roleset),
                         cost=_run_cost_grid(cfg, run_dir, decision))


def _run_cost_grid(cfg: Any, run_dir: Path, decision: str) -> dict | None:
    """A cost-conditioned run's grid: `cost_grid.json` (measured at the end of training), else the
    grid of the config with the searched designs of `design_search_grid.json` (no measured cost)."""
    import json

    from hieramas_gnn.build import cost_grid

    if not cfg.reward.cost_lambda_range:
        return None
    if (run_dir / "cost_grid.json").is_file():
        return json.loads((run_dir / "cost_grid.json").read_text())
    grid = cost_grid(cfg, decision)
    if (run_dir / "design_search_grid.json").is_file():
        grid.points = json.loads((run_dir / "design_search_grid.json").read_text())["points"]
    return grid.to_dict()


def run(args: argparse.Namespace) -> int:
    out = export_run(args.run, args.out, args.checkpoint)
    print(f"policy bundle written to {out} (sha256 {bundle_digest(out)}: pin it with --sha256 / "
          "Policy.load(..., sha256=...))")
    return 0
