"""Turn a run `Config` into the objects the system runs on: questions, roles, pool, client,
runner and policy.

This is the one place where config meets files and the LLM client. Training (`train/`),
evaluation (`eval/`), serving (`serve/`) and the commands build through it and then only receive
built objects. `build_training(cfg)` returns a `TrainingSetup`; the client is built apart
(`ClientSettings` -> `make_client`) so tests can swap in a fake client and keep everything else
real, and so a served bundle builds its client from the user's settings alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hieramas_gnn.config import Config
from hieramas_gnn.distributed.runner import make_runner
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import Pool, load_pool
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.single import single_job
from hieramas_gnn.policy.settings import ChoiceSettings
from hieramas_gnn.tasks import task_from_config
from hieramas_gnn.tasks.splits import split_by_source, split_questions


@dataclass(frozen=True)
class ClientSettings:
    """What an LLM client is built from: the rollout cache, the client's limits, the offline
    backends' settings and the backoff-jitter seed."""

    cache_path: str | None = "runs/rollouts.sqlite"
    """The rollout cache (SQLite); None: no cache."""
    cache_mode: str = "rw"
    """`rw`, `replay` (a miss raises) or `off`."""
    config: ClientConfig = field(default_factory=ClientConfig)
    """Limits, retries, budget."""
    backend: BackendSettings = field(default_factory=BackendSettings)
    """The offline backends' settings (part of their calls' cache key)."""
    seed: int = 0
    """Seed of the backoff jitter."""

    def __post_init__(self) -> None:
        if self.cache_mode not in ("rw", "replay", "off"):
            raise ConfigError(f"cache.mode must be one of rw, replay, off; got {self.cache_mode!r}")

    @classmethod
    def from_config(cls, cfg: Config) -> ClientSettings:
        """The client of a run config (`client`, `backend`, `cache` sections and `run.seed`)."""
        return cls(cache_path=None if cfg.cache.mode == "off" else cfg.cache.path, cache_mode=cfg.cache.mode,
                   config=cfg.client.client_config(), backend=cfg.backend, seed=cfg.run.seed)


def make_client(settings: ClientSettings, pool: Pool) -> LLMClient:
    """The LLM client over `pool`, behind the rollout cache of `settings`."""
    cache = RolloutCache(settings.cache_path, settings.cache_mode)
    return LLMClient(pool, cache, settings.config, backend=settings.backend, seed=settings.seed)


@dataclass
class TrainingSetup:
    """Everything the training loops need, built from config by `build_training` (or by a test).

    policy: `HieraPolicy`; builder: its `GraphBuilder` (roles and pool fixed); runner: has
    `run([(Design, Question)]) -> [Trace]` (e.g. `mas.runner.ExecutorRunner`); decision:
    the decision model; train / val: question lists.
    """

    policy: Any
    builder: Any
    runner: Any
    decision: str
    train: Sequence[Any]
    val: Sequence[Any]
    warm_design: Design | None = None
    """The design stage 1 starts from (`stage1.warm_start: search`), cloned before step 0."""
    warm_designs: Callable[[Sequence[Any]], list[Design]] | None = None
    """Per query, the design stage 1 starts from (`stage1.warm_start: search_per_cluster`: the
    query's cluster design, `train/cluster_search.py`); when set, it replaces `warm_design` as the
    clone's and the `warm_start_bc` term's target."""
    cost_grid: Any = None
    """A cost-conditioned run (`reward.cost_lambda_range`): the `policy.cost.CostGrid` (grid λs,
    per λ the decision model, after the design search also the searched design)."""

    def warm_targets(self, questions: Sequence[Any], cost_lambdas: Sequence[float] | None = None) -> list[Design]:
        """The warm-start design of each question (`warm_designs`, else `warm_design` for all);
        a cost-conditioned run: the design searched at the grid λ nearest each question's λ."""
        if self.cost_grid is not None and cost_lambdas is not None:
            return [Design.from_dict(self.cost_grid.nearest(lam)["design_json"]) for lam in cost_lambdas]
        if self.warm_designs is not None:
            return list(self.warm_designs(questions))
        return [self.warm_design] * len(questions)

    def decisions(self, cost_lambdas: Sequence[float] | None) -> str | list[str]:
        """The decision model of each question at its λ (one name when not cost-conditioned)."""
        if self.cost_grid is None or cost_lambdas is None:
            return self.decision
        return [self.cost_grid.decision(lam) for lam in cost_lambdas]


def load_questions(cfg: Config, run_dir: Any = None) -> tuple[list, list, list, Any]:
    """(train, val, test, task): disjoint parts of the configured split, drawn as `task.split_by`
    says with `task.split_seed` (`tasks/splits.py`); with `run_dir`, the ids go to
    `run_dir/split.json`."""
    tc = cfg.task
    task = task_from_config(tc)
    need = tc.train_size + tc.val_size + tc.test_size
    if tc.split_by == "source":
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


def load_roles(cfg: Config, task: Any) -> tuple[Any, list]:
    """(RoleSet, the Role objects in use, in order)."""
    roleset = get_roleset(cfg.roles.family or task.family)
    names = list(cfg.roles.names) or list(roleset.names)
    return roleset, [roleset.get(n) for n in names]


def load_models(cfg: Config) -> tuple[Pool, str]:
    """(Pool, decision model name)."""
    pool = load_pool(cfg.pool.name)
    decision = cfg.pool.decision or pool.names[0]
    pool.get(decision)  # names an unknown decision model
    return pool, decision


def build_policy(cfg: Config, roles: Sequence[Any], models: Sequence[Any], questions: Sequence[Any],
                 runner: Any = None):
    """(HieraPolicy, GraphBuilder) for these roles and models (`runner`: where the single-model
    rollouts of `policy.accuracy_hints` run; required when it is on)."""
    import torch  # the policy's modules load torch + PyG: only when a policy is built

    from hieramas_gnn.policy import features as F  # lazy: loads torch
    from hieramas_gnn.policy.gnn import HieraPolicy  # lazy: loads torch
    from hieramas_gnn.policy.graph import GraphBuilder  # lazy: loads torch

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
    builder = GraphBuilder(F.FeatureBuilder(embedder, domain_vocab=domains, hint_dim=hint_dim,
                                            id_dim=F.ID_DIM if pc.model_identity else 0,
                                            query_features=pc.query_features, **cost_features(cfg)), roles, models)
    torch.manual_seed(cfg.run.seed_for("policy_init"))  # the one seeding point of the initial weights
    return HieraPolicy(pc.arch, builder.dims).to(cfg.run.device), builder


def cost_features(cfg: Config) -> dict[str, Any]:
    """The `FeatureBuilder` cost arguments of a run: none unless `reward.cost_lambda_range` is set."""
    if not cfg.reward.cost_lambda_range:
        return {}
    from hieramas_gnn.policy.cost import CostRange

    lo, hi = cfg.reward.cost_lambda_range
    return {"cost_range": CostRange(float(lo), float(hi)), "cost_default": float(cfg.reward.cost_lambda)}


def cost_grid(cfg: Config, decision: str) -> Any:
    """The `CostGrid` of a cost-conditioned run before its design search (every grid λ with
    `decision`); None for a run with one fixed λ."""
    size = cfg.reward.cost_lambda_grid
    if not cfg.reward.cost_lambda_range:
        return None
    from hieramas_gnn.policy.cost import CostGrid, CostRange, log_grid

    lo, hi = (float(v) for v in cfg.reward.cost_lambda_range)
    points = [{"cost_lambda": lam, "decision": decision} for lam in log_grid(lo, hi, size)]
    return CostGrid(lo, hi, CostRange(lo, hi).clamp(cfg.reward.cost_lambda), points, cfg.reward.shape)


def training_accuracy(runner: Any, models: Sequence[Any], questions: Sequence[Any],
                      domains: Sequence[str]) -> list[tuple[float, ...]]:
    """`policy.features.accuracy_hints` of each model from its single answers to the training
    `questions` (a failed call counts as wrong). Shapes: -> M rows of 1 + len(domains)."""
    import numpy as np

    from hieramas_gnn.policy.features import accuracy_hints  # lazy: loads torch

    if runner is None:
        raise ValueError("policy.accuracy_hints needs a runner for the single-model rollouts")
    names = [m.name for m in models]
    traces = runner.run_jobs([single_job(runner.task, runner.roleset, q, m) for m in names for q in questions])
    n = len(questions)
    correct = np.array([[bool(traces[j * n + i].correct) and not traces[j * n + i].failed for j in range(len(names))]
                        for i in range(n)], dtype=float)  # [Q, M]
    return accuracy_hints(correct, [q.meta.get("domain") for q in questions], domains)


def choice_settings(cfg: Config, route: str, decision: str) -> ChoiceSettings:
    """How a bundle trained under `cfg` chooses designs (its topology route and decision model)."""
    tc = cfg.topology
    return ChoiceSettings(route=route, decision=decision, n_candidates=tc.n_candidates,
                          density_min=tc.density_min, density_max=tc.density_max,
                          seed=cfg.run.seed_for("choice"), topologies=cfg.stage1.topologies)


def build_runner(cfg: Config, task: Any, roleset: Any, pool: Pool, client: Any = None) -> Any:
    """Where the run's rollouts go: an `ExecutorRunner` over `client` (default: `make_client`),
    or Ray workers (`client.executor: ray`; this process stays the one writer of the cache)."""
    settings = ClientSettings.from_config(cfg)
    if cfg.client.executor == "ray" and client is None:
        return make_runner("ray", cfg.client.ray_address, task=task, roleset=roleset, pool=pool,
                           cache_path=settings.cache_path, cache_mode=settings.cache_mode,
                           client_config=settings.config, backend=settings.backend, seed=settings.seed,
                           max_in_flight=cfg.client.max_in_flight, workers=cfg.client.ray_workers)
    return make_runner("local", task=task, roleset=roleset, pool=pool,
                       client=client if client is not None else make_client(settings, pool),
                       max_in_flight=cfg.client.max_in_flight)


def build_training(cfg: Config, client: Any = None) -> TrainingSetup:
    """Everything the training loops need; `client=None` builds the real one (`make_client`)."""
    train, val, _test, task = load_questions(cfg, run_dir=cfg.run.dir)
    roleset, roles = load_roles(cfg, task)
    pool, decision = load_models(cfg)
    runner = build_runner(cfg, task, roleset, pool, client)
    policy, builder = build_policy(cfg, roles, list(pool.models), train, runner)
    return TrainingSetup(policy=policy, builder=builder, runner=runner, decision=decision,
                         train=train, val=val, cost_grid=cost_grid(cfg, decision))
