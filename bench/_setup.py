"""Shared set-up of the training / scaling / memory benchmarks (not a benchmark itself).

`make_trainer(...)` builds a stage-1 trainer the way `build.py` does (synthetic task,
offline `sim/` pool, hashing embedder, mixture policy with 3 proposers per role, no skipping),
but with any number of roles (the synthetic roles, cloned as `solver_2`, ... past the four
shipped ones) and any pool size (the shipped sim pool, then inline sim models of graded
ability), so episode time can be measured against roles and pool size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

K_PROPOSERS = 3


def roles(n: int) -> tuple[Any, list[Any]]:
    """(RoleSet, n roles): the synthetic roles, cycled and renamed past the shipped ones."""
    from hieramas_gnn.mas.roles import get_roleset

    base = get_roleset("synthetic")
    out = [dataclasses.replace(r, name=r.name if i < len(base.roles) else f"{r.name}_{i}")
           for i, r in ((i, base.roles[i % len(base.roles)]) for i in range(n))]
    return dataclasses.replace(base, roles=tuple(out)), out


def pool(n: int) -> Any:
    """The shipped sim pool's first n models, then inline sim models of graded ability."""
    from hieramas_gnn.llm.pool import Pool, load_pool, pool_from_dict

    shipped = load_pool("sim")
    models = list(shipped.models[:n])
    extra = [{"name": f"bench-{i}", "litellm_model": f"sim/bench-{i}", "input_cost_per_token": 1e-7 * (1 + i % 5),
              "output_cost_per_token": 4e-7 * (1 + i % 5),
              "extra": {"litellm_params": {"sim_model": {"ability": {"default": -1.0 + 0.1 * i}}}}}
             for i in range(n - len(models))]
    if extra:
        models += list(pool_from_dict({"name": "x", "models": extra}, where="bench", default_name="x").models)
    return Pool(f"bench-{n}", tuple(models))


def config(out: Path, n_train: int, batch_size: int, seed: int = 0) -> Any:
    from hieramas_gnn.config import Config
    from hieramas_gnn.config_io import from_dict

    return from_dict(Config, {
        "run": {"name": "bench", "seed": seed, "out_dir": str(out / "run")},
        "task": {"name": "synthetic", "split": "train", "train_size": n_train, "val_size": 8, "test_size": 0},
        "policy": {"embedder": "hashing", "embed_cache": None,
                   "arch": {"hidden": 64, "layers": 2, "k_proposers": K_PROPOSERS, "allow_skip": False}},
        "stage1": {"batch_size": batch_size, "dag_pool_size": 16, "lr": 3e-3},
        "credit": {"baseline": "moving_average"},
        "tracking": {"wandb": "disabled", "progress": False},
    })


def make_trainer(out: Path, n_roles: int = 5, n_models: int = 6, n_train: int = 256, batch_size: int = 32,
                 cache: Any = None, seed: int = 0) -> Any:
    """A `Stage1Trainer` over the sim pool (latency off); its runner's client is `.setup.runner.client`."""
    from hieramas_gnn.llm.client import ClientConfig, LLMClient
    from hieramas_gnn.mas.runner import ExecutorRunner
    from hieramas_gnn.tasks import get_task
    from hieramas_gnn.build import build_policy
    from hieramas_gnn.build import TrainingSetup
    from hieramas_gnn.train.stage1 import Stage1Trainer

    cfg = config(out, n_train, batch_size, seed)
    task = get_task("synthetic")
    qs = task.load(split="train", limit=n_train + 8)
    train, val = qs[:n_train], qs[n_train:]
    roleset, role_list = roles(n_roles)
    p = pool(n_models)
    policy, builder = build_policy(cfg, role_list, list(p.models), train)
    client = LLMClient(p, cache, ClientConfig(max_concurrency=64, per_model_concurrency=64),
                       backend={"sim": {"latency": "off"}})
    runner = ExecutorRunner(client=client, task=task, roleset=roleset, max_in_flight=64)
    setup = TrainingSetup(policy=policy, builder=builder, runner=runner, decision=p.names[0], train=train, val=val)
    return Stage1Trainer(cfg, setup, tracker=None)
