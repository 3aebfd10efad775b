"""Typed run configuration: one dataclass section per concern, a docstring per field.

`load_config("experiments/configs/NAME.yaml", ["stage1.lr=3e-4", "run.seed=2"])` reads a YAML
file (a top-level `base: other.yaml` inherits another file), applies dotted `key=value`
overrides (values parsed as YAML), checks types and values, and raises `ConfigError` naming the
field (`stage1.lr: must be > 0, got -1`). Derived fields (`init=False`) are computed once, right
after parsing; a file that sets them is accepted and they are recomputed all the same.
`to_dict(cfg)` is what goes to `wandb.init(config=...)`; `dump_yaml` writes the run folder's
`config.yaml` without the derived fields, and `load_config` reads it back to an equal config. Plumbing (parsing, overrides, read tracking) lives in `config_io.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from hieramas_gnn.config_io import from_dict, merge, parse_overrides, read_yaml, to_dict  # noqa: F401
from hieramas_gnn.errors import ConfigError

# Derived field -> the fields it is computed from (a read of the derived field reads them).
DERIVED_FROM = {"run.dir": ("run.out_dir",), "stage1.anneal": ("stage1.anneal_steps",)}

Problems = Iterator[tuple[str, str]]  # (field, message)


def _positive(name: str, value: float) -> Problems:
    if not value > 0:
        yield name, f"must be > 0, got {value}"


def _non_negative(name: str, value: float) -> Problems:
    if not value >= 0:
        yield name, f"must be >= 0, got {value}"


@dataclass
class RunConfig:
    """Run identity and output folder."""

    name: str = "stage1"
    """Experiment name: the `exp` part of the run name `{task}__{exp}__{seed}__{time}`."""
    seed: int = 0
    """The one seed: torch / numpy generators, DAG pool, query split order."""
    out_dir: str = "runs/{task}__{name}__{seed}"
    """Run folder (checkpoints, metrics.jsonl, wandb files). `{task}`, `{name}`, `{seed}` are
    filled in. Re-running with the same folder resumes the run."""
    device: str = "cpu"
    """Torch device of the policy."""
    dir: Path = field(init=False, default=Path("."))
    """Derived: the resolved run folder."""

    def check(self) -> Problems:
        if not self.name or "/" in self.name:
            yield "name", f"must be a non-empty name without '/', got {self.name!r}"
        if not self.out_dir:
            yield "out_dir", "must not be empty"

    def finalize(self, task: str) -> None:
        try:
            self.dir = Path(self.out_dir.format(task=task, name=self.name, seed=self.seed))
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"run.out_dir: unknown placeholder {exc} (use {{task}}, {{name}}, {{seed}})") from None


@dataclass
class TaskConfig:
    """Which benchmark, and how its questions are split."""

    name: str = "synthetic"
    """Task registry name (`hieramas tasks list`)."""
    path: str | None = None
    """Local question file (jsonl); None: the task's default source."""
    split: str = "test"
    """Split to draw questions from; train/val/test are disjoint parts of it (`split_by`)."""
    train_size: int = 64
    """Training queries."""
    val_size: int = 32
    """Validation queries (checkpoint selection)."""
    test_size: int = 64
    """Held-out test queries (evaluation only)."""
    split_by: Literal["random", "domain", "consecutive"] = "random"
    """How train/val/test are drawn from the split (`tasks/splits.py`): `random`, a permutation
    seeded by `run.seed` and stratified by domain; `domain`, test only from held-out domains
    (`test_domains`), train/val from the others; `consecutive`, the file's first questions in
    order (the old behaviour; only for reproducing earlier runs)."""
    test_domains: list[str] = field(default_factory=list)
    """`split_by: domain`: the held-out domains; empty: a `run.seed`-seeded
    `test_domain_fraction` of the domains."""
    test_domain_fraction: float = 0.25
    """`split_by: domain` without `test_domains`: the share of domains held out (at least one)."""

    def check(self) -> Problems:
        yield from _positive("train_size", self.train_size)
        yield from _positive("val_size", self.val_size)
        yield from _non_negative("test_size", self.test_size)
        if not 0.0 < self.test_domain_fraction < 1.0:
            yield "test_domain_fraction", f"must be in (0, 1), got {self.test_domain_fraction}"
        if self.test_domains and self.split_by != "domain":
            yield "test_domains", f"only used with split_by: domain (split_by is {self.split_by!r})"


@dataclass
class PoolConfig:
    """The LLMs the policy can place in a mixture."""

    name: str = "sim"
    """Pool name (`data/pools/<name>.yaml`) or a path to a pool YAML."""
    decision: str | None = None
    """Decision model (reads the sinks, gives the final answer); None: the pool's first model."""


@dataclass
class RolesConfig:
    """The supernodes."""

    family: str | None = None
    """Role-set family; None: the task's family."""
    names: list[str] = field(default_factory=list)
    """Subset of role names, in order; empty: every role of the set."""


@dataclass
class ClientConfig:
    """LLM client settings, passed through to `hieramas_gnn.llm.client`."""

    max_in_flight: int = 32
    """Calls (and queries in `run_many`) in flight at once."""
    budget_usd: float | None = None
    """Spend cap for this run; a call that would pass it is refused. None: no cap."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further client options, passed as keyword arguments to the client config."""

    def check(self) -> Problems:
        yield from _positive("max_in_flight", self.max_in_flight)
        if self.budget_usd is not None:
            yield from _non_negative("budget_usd", self.budget_usd)


@dataclass
class CacheConfig:
    """The rollout cache (every completed LLM call)."""

    path: str = "runs/rollouts.sqlite"
    """SQLite file; shared between runs so nothing is paid twice."""
    mode: Literal["rw", "replay", "off"] = "rw"
    """`rw` read-write; `replay` a miss raises (free, deterministic); `off` no cache."""


@dataclass
class PolicyConfig:
    """GNN policy settings; `options` are passed through to `hieramas_gnn.policy.gnn.PolicyConfig`."""

    embedder: Literal["minilm", "hashing"] = "minilm"
    """Text encoder: `minilm` (all-MiniLM-L6-v2, 384-d, offline) or `hashing` (tests, no model)."""
    hashing_dim: int = 64
    """Width of the hashing embedder (ignored by `minilm`, whose width comes from the model)."""
    embed_cache: str | None = "runs/embeddings"
    """Folder of the on-disk embedding cache; None: memory only."""
    query_domains: bool = True
    """Add a one-hot of the query's domain (from the training questions) to the query node."""
    options: dict[str, Any] = field(default_factory=dict)
    """Architecture keyword arguments (hidden, layers, conv, heads, k_proposers, allow_skip, ...)."""

    def check(self) -> Problems:
        yield from _positive("hashing_dim", self.hashing_dim)


@dataclass
class Stage1Config:
    """Mixture-selector training (REINFORCE over a pool of random DAGs)."""

    steps: int = 200
    """Optimizer steps."""
    batch_size: int = 8
    """Queries per step."""
    samples_per_query: int = 1
    """Designs sampled per query per step (G = batch_size * samples_per_query)."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    grad_clip: float = 1.0
    """Max global gradient norm (0: no clipping)."""
    entropy_beta: float = 0.01
    """Entropy bonus weight in the loss."""
    temperature_start: float = 1.0
    """Sampling temperature at step 0."""
    temperature_end: float = 1.0
    """Sampling temperature once annealing is done (geometric schedule)."""
    anneal_steps: int | None = None
    """Steps over which the temperature anneals; None: all `steps`."""
    topologies: Literal["random", "parallel"] = "random"
    """Topology pool: `random` connected DAGs (HieraMAS), or `parallel` (no edges: every role
    answers the query alone and the decision reads them all; isolates each role's effect)."""
    dag_pool_size: int = 16
    """Random DAGs in the topology pool; each step draws one per query."""
    dag_density: float = 0.5
    """Extra-edge density of the random DAGs (0: spanning tree only)."""
    val_every: int = 20
    """Validate (greedy designs on the val set) and maybe checkpoint every this many steps."""
    checkpoint_every: int = 20
    """Save a resumable checkpoint every this many steps (plus the best-val one)."""
    anneal: int = field(init=False, default=0)
    """Derived: the resolved `anneal_steps`."""

    def check(self) -> Problems:
        for name in ("steps", "batch_size", "samples_per_query", "lr", "dag_pool_size",
                     "val_every", "checkpoint_every", "temperature_start", "temperature_end"):
            yield from _positive(name, getattr(self, name))
        yield from _non_negative("weight_decay", self.weight_decay)
        yield from _non_negative("grad_clip", self.grad_clip)
        yield from _non_negative("entropy_beta", self.entropy_beta)
        if not 0.0 <= self.dag_density <= 1.0:
            yield "dag_density", f"must be in [0, 1], got {self.dag_density}"
        if self.anneal_steps is not None:
            yield from _positive("anneal_steps", self.anneal_steps)

    def finalize(self) -> None:
        self.anneal = self.anneal_steps if self.anneal_steps is not None else self.steps


@dataclass
class Stage2Config:
    """Topology classifier (E7 fills this section; passed to `train.stage2`)."""

    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the stage-2 config."""


@dataclass
class RewardConfig:
    """Cost-aware reward and multi-level (node / system) attribution; see `train/rewards.py`."""

    shape: Literal["linear", "exp", "hieramas"] = "exp"
    """`linear`: correct - λ·cost; `exp`: correct · exp(-λ·cost) (bounded in [0, 1]);
    `hieramas`: max(exp(-λ·cost), 0.5) if correct, else max(-exp(300·cost), -2.5)."""
    cost_lambda: float = 0.0
    """λ, the price of a dollar in reward units (1/USD)."""
    alpha: float = 0.5
    """Weight of the node-level grade in a role's reward (0: system only). Roles whose output
    cannot be graded, and skipped roles, always use 0."""

    def check(self) -> Problems:
        yield from _non_negative("cost_lambda", self.cost_lambda)
        if not 0.0 <= self.alpha <= 1.0:
            yield "alpha", f"must be in [0, 1], got {self.alpha}"


@dataclass
class CreditConfig:
    """Which baseline REINFORCE subtracts; see `train/credit.py`."""

    baseline: Literal["none", "moving_average", "counterfactual"] = "counterfactual"
    """`none` (as published HieraMAS), `moving_average` per role, or `counterfactual` (COMA)."""
    k: int = 4
    """Counterfactual: re-samples of a role's mixture per design (extra rollouts, cached)."""
    momentum: float = 0.9
    """Moving average: weight of the old mean at each update."""

    def check(self) -> Problems:
        yield from _positive("k", self.k)
        if not 0.0 <= self.momentum < 1.0:
            yield "momentum", f"must be in [0, 1), got {self.momentum}"


@dataclass
class TrackingConfig:
    """wandb and console output; metrics.jsonl is always written in the run folder."""

    wandb: Literal["auto", "online", "offline", "disabled"] = "auto"
    """`auto`: online when WANDB_API_KEY is set, else offline. Files stay in the run folder."""
    project: str = "hieramas_gnn"
    """wandb project."""
    entity: str | None = None
    """wandb entity (team); None: the default of the key."""
    log_every: int = 1
    """Log train/* metrics every this many steps."""
    designs_every: int = 50
    """Log a table of sampled designs and topology images every this many steps."""
    progress: bool = True
    """Show a progress bar on the console."""

    def check(self) -> Problems:
        yield from _positive("log_every", self.log_every)
        yield from _positive("designs_every", self.designs_every)


@dataclass
class Config:
    """A whole run."""

    run: RunConfig = field(default_factory=RunConfig)
    """Run identity and output folder."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """Benchmark and split sizes."""
    pool: PoolConfig = field(default_factory=PoolConfig)
    """LLM pool."""
    roles: RolesConfig = field(default_factory=RolesConfig)
    """Role set."""
    client: ClientConfig = field(default_factory=ClientConfig)
    """LLM client."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    """Rollout cache."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """GNN policy."""
    stage1: Stage1Config = field(default_factory=Stage1Config)
    """Mixture-selector training."""
    stage2: Stage2Config = field(default_factory=Stage2Config)
    """Topology classifier."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward."""
    credit: CreditConfig = field(default_factory=CreditConfig)
    """Baseline."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """Tracking."""

    def __post_init__(self) -> None:
        problems = list(validate(self))
        if problems:
            raise ConfigError("; ".join(problems))
        self.run.finalize(task=self.task.name)
        self.stage1.finalize()


def validate(cfg: Config) -> Iterator[str]:
    """Yield `section.field: message` for every invalid value (sections define `check()`)."""
    for f in dataclasses.fields(cfg):
        section = object.__getattribute__(cfg, f.name)
        check = getattr(section, "check", None)
        for name, message in (check() if check else ()):
            yield f"{f.name}.{name}: {message}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (defaults when `path` is None) and apply dotted `key=value` overrides."""
    data = read_yaml(Path(path)) if path is not None else {}
    data = merge(data, parse_overrides(list(overrides or [])))
    return from_dict(Config, data)
