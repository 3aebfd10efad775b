"""Build the pieces of a training run from a `Config`: questions, pool, roles, policy, runner.

This is the edge where config meets files and the LLM client; the trainers (`stage1.py`,
`stage2.py`) only receive the built objects. `build_setup(cfg)` returns a `Stage1Setup`;
`make_client` is separate so tests can swap in a fake client and keep everything else real.
"""

from __future__ import annotations

from typing import Any, Sequence

from hieramas_gnn.config_io import from_dict
from hieramas_gnn.errors import ConfigError


def load_questions(cfg: Any, run_dir: Any = None) -> tuple[list, list, list, Any]:
    """(train, val, test, task): disjoint parts of the configured split, drawn as `task.split_by`
    says with `run.seed` (`tasks/splits.py`); with `run_dir`, the ids go to `run_dir/split.json`."""
    from hieramas_gnn.tasks import task_from_config
    from hieramas_gnn.tasks.splits import split_questions

    tc = cfg.task
    task = task_from_config(tc)
    need = tc.train_size + tc.val_size + tc.test_size
    if tc.split_by == "source":
        from hieramas_gnn.tasks.splits import split_by_source

        if "train" not in getattr(task, "splits", ()):  # tasks with files of their own declare `splits`
            raise ConfigError(f"task.split_by=source: task {tc.name!r} has no train split of its own; "
                              "use split_by: random")
        split = split_by_source(task.load(tc.path, split="train"), task.load(tc.path, split="test"),
                                (tc.train_size, tc.val_size, tc.test_size), seed=tc.split_seed)
        if run_dir is not None:
            split.write(run_dir)
        return split.train, split.val, split.test, task
    if tc.split_by == "consecutive":
        questions = task.load(tc.path, split=tc.split, limit=need)
    else:  # the whole split; a task generated from a seed may hold fewer by default than asked for
        questions = task.load(tc.path, split=tc.split)
        if len(questions) < need:
            questions = task.load(tc.path, split=tc.split, limit=need)
    if len(questions) < need:
        raise ConfigError(f"task.train_size + val_size + test_size = {need}, but task {tc.name!r} "
                          f"split {tc.split!r} has only {len(questions)} questions")
    split = split_questions(questions, (tc.train_size, tc.val_size, tc.test_size), split_by=tc.split_by,
                            seed=tc.split_seed, test_domains=tc.test_domains,
                            test_domain_fraction=tc.test_domain_fraction)
    if run_dir is not None:
        split.write(run_dir)
    return split.train, split.val, split.test, task


def load_roles(cfg: Any, task: Any) -> tuple[Any, list]:
    """(RoleSet, the Role objects in use, in order)."""
    from hieramas_gnn.mas.roles import get_roleset

    roleset = get_roleset(cfg.roles.family or task.family)
    names = list(cfg.roles.names) or list(roleset.names)
    return roleset, [roleset.get(n) for n in names]


def load_models(cfg: Any) -> tuple[Any, str]:
    """(Pool, decision model name)."""
    from hieramas_gnn.llm.pool import load_pool

    pool = load_pool(cfg.pool.name)
    decision = cfg.pool.decision or pool.names[0]
    pool.get(decision)  # names an unknown decision model
    return pool, decision


def build_policy(cfg: Any, roles: Sequence[Any], models: Sequence[Any], questions: Sequence[Any],
                 runner: Any = None):
    """(HieraPolicy, GraphBuilder) for these roles and models (`runner`: where the single-model
    rollouts of `policy.accuracy_hints` run; required when it is on)."""
    import torch

    from hieramas_gnn.policy import features as F
    from hieramas_gnn.policy.gnn import HieraPolicy
    from hieramas_gnn.policy.graph import GraphBuilder

    pc = cfg.policy
    if pc.embedder == "hashing":
        inner = F.HashingEmbedder(pc.hashing_dim)
    else:
        inner = F.MiniLMEmbedder(device=cfg.run.device)
    embedder = F.CachedEmbedder(inner, pc.embed_cache)
    domains = sorted({q.meta.get("domain") for q in questions if q.meta.get("domain")}) if pc.query_domains else []
    hint_dim = 0
    if pc.accuracy_hints:
        models = F.attach_hints(models, training_accuracy(runner, models, questions, domains))
        hint_dim = 1 + len(domains)
    builder = GraphBuilder(F.FeatureBuilder(embedder, domain_vocab=domains, hint_dim=hint_dim), roles, models)
    torch.manual_seed(cfg.run.seed_for("policy_init"))  # the one seeding point of the initial weights
    return HieraPolicy(pc.arch, builder.dims).to(cfg.run.device), builder


def training_accuracy(runner: Any, models: Sequence[Any], questions: Sequence[Any],
                      domains: Sequence[str]) -> list[tuple[float, ...]]:
    """`policy.features.accuracy_hints` of each model from its single answers to the training
    `questions` (a failed call counts as wrong). Shapes: -> M rows of 1 + len(domains)."""
    import numpy as np

    from hieramas_gnn.mas.single import single_job
    from hieramas_gnn.policy.features import accuracy_hints

    if runner is None:
        raise ValueError("policy.accuracy_hints needs a runner for the single-model rollouts")
    names = [m.name for m in models]
    traces = runner.run_jobs([single_job(runner.task, runner.roleset, q, m) for m in names for q in questions])
    n = len(questions)
    correct = np.array([[bool(traces[j * n + i].correct) and not traces[j * n + i].failed for j in range(len(names))]
                        for i in range(n)], dtype=float)  # [Q, M]
    return accuracy_hints(correct, [q.meta.get("domain") for q in questions], domains)


def client_settings(cfg: Any) -> dict[str, Any]:
    """The client, backend and cache settings of the config, as plain values."""
    import dataclasses

    options = dataclasses.asdict(cfg.client)
    for runner_field in ("max_in_flight", "executor", "ray_address", "ray_workers"):
        options.pop(runner_field)  # the runner's settings, not the client's
    options["seed"] = cfg.run.seed
    return {"cache_path": None if cfg.cache.mode == "off" else cfg.cache.path,
            "cache_mode": cfg.cache.mode, "options": options, "backend": dataclasses.asdict(cfg.backend)}


def make_client(settings: dict[str, Any], pool: Any) -> Any:
    """The LLM client (behind the rollout cache) for these `client_settings`."""
    from hieramas_gnn.llm.cache import RolloutCache
    from hieramas_gnn.llm.client import ClientConfig, LLMClient

    cache = RolloutCache(settings["cache_path"], settings["cache_mode"])
    options = dict(settings["options"])
    if "backend" in settings:
        options["backend"] = settings["backend"]  # the offline backends' settings (in their cache key)
    return LLMClient(pool, cache, from_dict(ClientConfig, options, "client"))


def build_setup(cfg: Any, client: Any = None):
    """Everything `train_stage1` needs; `client=None` builds the real one (`make_client`)."""
    from hieramas_gnn.mas.runner import ExecutorRunner
    from hieramas_gnn.train.stage1 import Stage1Setup

    train, val, _test, task = load_questions(cfg, run_dir=cfg.run.dir)
    roleset, roles = load_roles(cfg, task)
    pool, decision = load_models(cfg)
    settings = client_settings(cfg)
    if cfg.client.executor == "ray" and client is None:  # rollouts on Ray workers, cache written here
        from hieramas_gnn.distributed.runner import make_runner
        from hieramas_gnn.llm.client import ClientConfig

        options = dict(settings["options"], backend=settings["backend"])
        runner = make_runner("ray", cfg.client.ray_address, task=task, roleset=roleset, pool=pool,
                             cache_path=settings["cache_path"], cache_mode=settings["cache_mode"],
                             client_config=from_dict(ClientConfig, options, "client"),
                             max_in_flight=cfg.client.max_in_flight, workers=cfg.client.ray_workers)
    else:
        client = client if client is not None else make_client(settings, pool)
        runner = ExecutorRunner(client=client, task=task, roleset=roleset,
                                max_in_flight=cfg.client.max_in_flight)
    policy, builder = build_policy(cfg, roles, list(pool.models), train, runner)
    return Stage1Setup(policy=policy, builder=builder, runner=runner, decision=decision,
                       train=train, val=val)
