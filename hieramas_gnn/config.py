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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from hieramas_gnn.config_io import (Problems, from_dict, merge, non_negative, parse_overrides,  # noqa: F401
                                    positive, read_yaml, to_dict)
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.mas.settings import CandidateDAGs
from hieramas_gnn.policy.settings import ArchConfig

# Derived field -> the fields it is computed from (a read of the derived field reads them).
DERIVED_FROM = {"run.dir": ("run.out_dir",), "stage1.anneal": ("stage1.anneal_steps",)}

# The named random streams of a run (see `RunConfig.seed_for`).
STREAMS = ("policy_init", "stage1", "stage2", "edges", "choice", "eval", "clusters")


def derive_seed(seed: int, stream: str) -> int:
    """A 31-bit seed for `stream` from the run seed (numpy SeedSequence over (seed, crc32(name)))."""
    import zlib

    import numpy as np

    return int(np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(1)[0] >> 1)


MAX_NAME = 200
"""Longest run name (it becomes a folder name; most file systems stop at 255 bytes)."""
MAX_QUESTIONS = 1_000_000
"""Most questions a split size may ask for (more is a typo that would build them all in memory)."""
OUT_DIR_FIELDS = ("task", "name", "seed", "cost_lambda")


def format_out_dir(template: str, **values: Any) -> str:
    """`run.out_dir` with its `{task}`, `{name}`, `{seed}`, `{cost_lambda}` filled in.

    Only those plain names (no attributes, indexes or format specs: `{task.upper}` would name a
    folder after a bound method, `{seed:>999999}` would build a huge string); the result must be
    a usable path (at most 4096 characters, no component over 255 bytes)."""
    import string

    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"run.out_dir {template!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    out = []
    for literal, field_name, spec, conversion in parts:
        out.append(literal)
        if field_name is None:
            continue
        if field_name not in OUT_DIR_FIELDS or spec or conversion:
            raise ConfigError(f"run.out_dir {template!r}: unknown placeholder {{{field_name}{'!' + conversion if conversion else ''}"
                              f"{':' + spec if spec else ''}}} (use {', '.join('{' + f + '}' for f in OUT_DIR_FIELDS)}, "
                              "without attributes or format specs)")
        out.append(str(values[field_name]))
    text = "".join(out)
    if len(text) > 4096 or any(len(p.encode()) > 255 for p in Path(text).parts):
        raise ConfigError(f"run.out_dir: the folder name {text[:80]!r}... is too long (a path component over 255 bytes)")
    return text


@dataclass
class RunConfig:
    """Run identity and output folder."""

    name: str = "stage1"
    """Experiment name: the `exp` part of the run name `{task}__{exp}__{seed}__{time}`."""
    seed: int = 0
    """The one seed. Every random stream of a run (initial weights, stage-1 sampling, the DAG
    pool, the split, stage-2 candidates, the edge route, the choice rule) is derived from it by
    name with `seed_for(name)`; the simulated world's own seed is `backend.sim.seed`."""
    out_dir: str = "runs/{task}__{name}__{seed}"
    """Run folder (checkpoints, metrics.jsonl, wandb files). `{task}`, `{name}`, `{seed}` and
    `{cost_lambda}` (reward.cost_lambda, for sweeps) are filled in. Re-running with the same folder
    resumes the run."""
    device: str = "cpu"
    """Torch device of the policy."""
    threads: int | None = 1
    """Torch intra-op threads when training on the CPU. 1 by default: the policy's graphs are
    tiny, and a second thread burned ~10x the CPU without speed (`bench/`; under load a 3000-step
    replay run went from minutes to seconds per seed). None: torch's own default."""
    dir: Path = field(init=False, default=Path("."))
    """Derived: the resolved run folder."""

    def check(self) -> Problems:
        if not self.name or "/" in self.name or self.name in (".", "..") or not self.name.isprintable():
            yield "name", f"must be a non-empty name without '/' or control characters, got {self.name!r}"
        elif len(self.name) > MAX_NAME:
            yield "name", f"must be at most {MAX_NAME} characters (a folder name), got {len(self.name)}"
        if not self.out_dir:
            yield "out_dir", "must not be empty"
        elif not self.out_dir.isprintable():
            yield "out_dir", f"must not contain control characters, got {self.out_dir!r}"
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            yield "threads", f"must be >= 1 or null, got {self.threads!r}"

    def seed_for(self, stream: str) -> int:
        """The seed of the named random stream (`STREAMS`), derived from `seed`: independent
        streams, no magic offsets, the same value in every process."""
        if stream not in STREAMS:
            raise ValueError(f"unknown seed stream {stream!r} (known: {', '.join(STREAMS)})")
        return derive_seed(self.seed, stream)

    def finalize(self, task: str, cost_lambda: float | None = None) -> None:
        self.dir = Path(format_out_dir(self.out_dir, task=task, name=self.name, seed=self.seed,
                                       cost_lambda=f"{cost_lambda:g}" if cost_lambda is not None else ""))


@dataclass
class ComponentConfig:
    """One component of a mixed task (`task.name: mix`)."""

    name: str = ""
    """A task name (`hieramas tasks list`), e.g. `gsm8k`, `mmlu_redux`, `routerdc_gsm8k`."""
    size: int | None = None
    """Questions of the component's split to take (a fixed pseudo-random subset); null: all."""

    def check(self) -> Problems:
        if not self.name:
            yield "name", "required: a task name"
        if self.size is not None and self.size < 1:
            yield "size", f"must be >= 1 or null, got {self.size}"


@dataclass
class TaskConfig:
    """Which benchmark, and how its questions are split."""

    name: str = "synthetic"
    """Task registry name (`hieramas tasks list`)."""
    path: str | None = None
    """Local question file (jsonl); None: the task's default source."""
    scorer: str | None = None
    """Set: `name` is a new task read from `path` (jsonl: question, answer [, id, domain, choices]),
    graded by `exact`, `numeric`, `choice`, `regex:PATTERN` or `module:function` (tasks/generic.py)."""
    split: str = "test"
    """Split to draw questions from; train/val/test are disjoint parts of it (`split_by`)."""
    train_size: int = 64
    """Training queries."""
    val_size: int = 32
    """Validation queries (checkpoint selection)."""
    test_size: int = 64
    """Held-out test queries (evaluation only)."""
    split_by: Literal["random", "domain", "source", "consecutive"] = "random"
    """How train/val/test are drawn from the split (`tasks/splits.py`): `random`, a permutation
    seeded by `split_seed` and stratified by domain; `domain`, test only from held-out domains
    (`test_domains`), train/val from the others; `source`, the task's own train and test files
    (RouterDC / RouterBench and their mixes: train + val from `train`, test from `test`);
    `consecutive`, the file's first questions in order (only for reproducing earlier runs)."""
    components: list[ComponentConfig] = field(default_factory=list)
    """`name: mix`: the tasks composed into one mixed task, each `{name, size}` (`tasks/mix.py`);
    scored per component (`by_component`, `accuracy_task_mean` in every result row)."""
    test_domains: list[str] = field(default_factory=list)
    """`split_by: domain`: the held-out domains; empty: a `split_seed`-seeded
    `test_domain_fraction` of the domains."""
    test_domain_fraction: float = 0.25
    """`split_by: domain` without `test_domains`: the share of domains held out (at least one)."""
    split_seed: int = 0
    """Seed of the split's permutation. Not derived from `run.seed`: every training seed of an
    experiment must see the same held-out questions (and never train on another seed's test)."""

    def check(self) -> Problems:
        yield from positive("train_size", self.train_size)
        yield from positive("val_size", self.val_size)
        yield from non_negative("test_size", self.test_size)
        for name in ("train_size", "val_size", "test_size"):
            if getattr(self, name) > MAX_QUESTIONS:
                yield name, f"must be at most {MAX_QUESTIONS:,}, got {getattr(self, name)}"
        if not 0.0 < self.test_domain_fraction < 1.0:
            yield "test_domain_fraction", f"must be in (0, 1), got {self.test_domain_fraction}"
        if self.test_domains and self.split_by != "domain":
            yield "test_domains", f"only used with split_by: domain (split_by is {self.split_by!r})"
        if self.components and self.name != "mix":
            yield "components", f"only used with name: mix (name is {self.name!r})"
        if self.name == "mix" and not self.components:
            yield "components", "required with name: mix (a list of {name, size})"
        for i, comp in enumerate(self.components):
            for name, message in comp.check():
                yield f"components[{i}].{name}", message


@dataclass
class PoolConfig:
    """The LLMs the policy can place in a mixture."""

    name: str = "sim"
    """Pool name (`data/pools/<name>.yaml`) or a path to a pool YAML."""
    decision: str | None = None
    """Decision model (reads the sinks, gives the final answer); None: the pool model whose single
    answers get the best cost-aware reward on the training + validation queries (never "the
    pool's first model")."""


@dataclass
class RolesConfig:
    """The supernodes."""

    family: str | None = None
    """Role-set family; None: the task's family."""
    names: list[str] = field(default_factory=list)
    """Subset of role names, in order; empty: every role of the set."""


@dataclass
class ClientSection(ClientConfig):
    """The LLM client's limits and retries (`llm.client.ClientConfig`, whose fields it has) and
    where the training rollouts run. The offline backends' settings are the `backend` section;
    the backoff jitter is seeded from `run.seed`."""

    max_in_flight: int = 32
    """Calls in flight across all queries (the executor's bound)."""
    executor: Literal["local", "ray"] = "local"
    """Where training rollouts run: `local` (this process) or `ray` (Ray workers; this process
    stays the one writer of the cache; `pip install '.[ray]'`, docs/DISTRIBUTED.md)."""
    ray_address: str | None = None
    """Ray cluster address (`auto` for a cluster started with `ray start`); None: a local one."""
    ray_workers: int | None = None
    """Ray workers (None: one per CPU of the cluster)."""

    def check(self) -> Problems:
        yield from super().check()
        yield from positive("max_in_flight", self.max_in_flight)
        if self.ray_workers is not None:
            yield from positive("ray_workers", self.ray_workers)

    def client_config(self) -> ClientConfig:
        """The client's own settings (without the runner's)."""
        return ClientConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ClientConfig)})


@dataclass
class CacheConfig:
    """The rollout cache (every completed LLM call)."""

    path: str = "runs/rollouts.sqlite"
    """SQLite file; shared between runs so nothing is paid twice."""
    mode: Literal["rw", "replay", "off"] = "rw"
    """`rw` read-write; `replay` a miss raises (free, deterministic); `off` no cache."""


@dataclass
class PolicySection:
    """GNN policy: text encoder, features and architecture."""

    embedder: Literal["minilm", "hashing"] = "minilm"
    """Text encoder: `minilm` (all-MiniLM-L6-v2, 384-d, offline) or `hashing` (tests, no model)."""
    hashing_dim: int = 64
    """Width of the hashing embedder (ignored by `minilm`, whose width comes from the model)."""
    embed_cache: str | None = "runs/embeddings"
    """Folder of the on-disk embedding cache; None: memory only."""
    query_domains: bool = True
    """Add a one-hot of the query's domain (from the training questions) to the query node."""
    query_features: bool = True
    """Whether the policy sees the query: `false` zeroes the query node's features (its text
    embedding and domain one-hot), the query-blind ablation — the same pipeline, whose policy can
    then only choose one design for every query (recorded in the bundle)."""
    accuracy_hints: bool = False
    """Add each model's accuracy on the *training* questions (overall, and per domain when
    `query_domains`) to its LLM node (`policy.features.accuracy_hints`; one single-model rollout
    per model and training question, through the cache; stored in the bundle)."""
    model_identity: bool = True
    """Give each LLM node a fixed hash embedding of the model's name (`policy.features`: 8 values).
    `false`: a model is described only by its profile, prices and hints, so the mixture head
    cannot tell two models apart by name (what `hieramas pool add` relies on to place a model the
    policy never trained with)."""
    arch: ArchConfig = field(default_factory=ArchConfig)
    """Architecture."""

    def check(self) -> Problems:
        yield from positive("hashing_dim", self.hashing_dim)


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
    warm_start: Literal["none", "search", "search_per_cluster"] = "none"
    """`search`: before step 0, run a family of simple fixed designs (single models, votes of
    one-proposer roles, mixtures of the top models) on the search questions (`warm_start_on`),
    take the one with the best reward (and its decision model), and behaviour-clone it into the
    policy (`train/warm_start.py`); `search_per_cluster`: the same search, then per cluster of the
    search questions (by `meta["domain"]` or by k-means on the query embedding, the partition
    chosen on held-out folds; `train/cluster_search.py`) the best design of the family, each
    query's cluster design behaviour-cloned into the policy (it sees the query, so one policy
    holds them all); `none`: start from the initial weights."""
    warm_start_voters: int = 3
    """Largest vote the search tries (one-proposer roles)."""
    warm_start_models: int = 7
    """Pool models (best single reward first) the search combines into votes and mixtures."""
    warm_start_on: Literal["train", "train_val"] = "train_val"
    """Questions the search ranks its designs on: `train_val` (train + val, the questions the
    fitted baselines — best single, router, cascade — and the decision model are chosen on) or
    `train` (the training split only)."""
    warm_start_queries: int = 0
    """At most this many of those questions (the first ones, drawn evenly over the components of a
    mixed task under `warm_start_weighting: component`; 0: all of them)."""
    warm_start_weighting: Literal["question", "component"] = "component"
    """How the search weighs its questions. `component` (default): on a mixed task (questions
    carrying `meta["component"]`, the parts `accuracy_task_mean` averages over) each component's
    questions weigh 1 / (their count), so every component counts as much as in that metric — in
    the design ranking, the per-cluster choice and the partition test — and `warm_start_queries`
    (and the clone's training questions) are drawn as evenly over the components as their sizes
    allow; with one component (every single task) this is `question`. `question`: every question
    weighs the same, and the first `warm_start_queries` questions are taken."""
    warm_start_steps: int = 300
    """Most behaviour-cloning steps (it stops once the greedy policy chooses the design)."""
    warm_start_bc: float = 0.0
    """Weight of the behaviour-cloning term −log π(searched design | query) kept in every stage-1
    step's loss (0: none): REINFORCE may depart from the searched design only where its
    advantage outweighs this pull (a regulariser towards the reference, as RLHF's KL term)."""
    warm_start_clusters: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    """With `search_per_cluster`: the k-means cluster counts (on the query embedding of the search
    questions) the partition is chosen among, beside one cluster (the `search` design for every
    query) and, with `warm_start_by_domain`, the domains; one entry fixes k (still compared with
    one cluster); [] tries no k-means partition."""
    warm_start_by_domain: bool = True
    """With `search_per_cluster`: also try the partition by the questions' `meta["domain"]` label
    (when every search question carries one and there are at least two)."""
    warm_start_folds: int = 5
    """With `search_per_cluster`: folds of the search questions the partition is chosen on (each
    cluster's design chosen on the other folds, scored on the held-out one; the best mean held-out
    reward wins, ties to fewer clusters, subject to `warm_start_cluster_z`)."""
    warm_start_cluster_z: float = 2.0
    """With `search_per_cluster`: a partition replaces one cluster only if its held-out reward beats
    one cluster's by more than this many standard errors of the paired per-question difference
    (0: any gain); among those that do, the best held-out reward wins. Guards against the winner's
    curse of choosing among several partitions on the same folds."""
    warm_start_design_z: float = 0.0
    """With `search_per_cluster`: a cluster's best design replaces the global (`search`) design in
    that cluster only if its reward there beats the global design's by more than this many standard
    errors of the paired per-question difference (0: any gain). Guards each cluster's pick, the best
    of the whole family on that cluster's questions alone, against the winner's curse."""
    warm_start_min_cluster: int = 8
    """With `search_per_cluster`: a cluster with fewer search questions than this (in a fold:
    fewer outside it) keeps the `search` design, and k-means counts above (questions / this) are
    not tried."""
    anneal: int = field(init=False, default=0)
    """Derived: the resolved `anneal_steps`."""

    def check(self) -> Problems:
        for name in ("steps", "batch_size", "samples_per_query", "lr", "dag_pool_size",
                     "val_every", "checkpoint_every", "temperature_start", "temperature_end",
                     "warm_start_voters", "warm_start_models", "warm_start_steps"):
            yield from positive(name, getattr(self, name))
        yield from non_negative("warm_start_queries", self.warm_start_queries)
        yield from positive("warm_start_min_cluster", self.warm_start_min_cluster)
        yield from non_negative("warm_start_cluster_z", self.warm_start_cluster_z)
        yield from non_negative("warm_start_design_z", self.warm_start_design_z)
        if self.warm_start_folds < 2:
            yield "warm_start_folds", f"must be >= 2, got {self.warm_start_folds}"
        for k in self.warm_start_clusters:
            if not isinstance(k, int) or k < 2:
                yield "warm_start_clusters", f"cluster counts must be integers >= 2, got {k!r}"
        yield from non_negative("warm_start_bc", self.warm_start_bc)
        if self.warm_start not in ("none", "search", "search_per_cluster"):
            yield "warm_start", f"must be none, search or search_per_cluster, got {self.warm_start!r}"
        if self.warm_start_weighting not in ("question", "component"):
            yield "warm_start_weighting", f"must be question or component, got {self.warm_start_weighting!r}"
        if self.warm_start_on not in ("train", "train_val"):
            yield "warm_start_on", f"must be train or train_val, got {self.warm_start_on!r}"
        yield from non_negative("weight_decay", self.weight_decay)
        yield from non_negative("grad_clip", self.grad_clip)
        yield from non_negative("entropy_beta", self.entropy_beta)
        if not 0.0 <= self.dag_density <= 1.0:
            yield "dag_density", f"must be in [0, 1], got {self.dag_density}"
        if self.anneal_steps is not None:
            yield from positive("anneal_steps", self.anneal_steps)

    def finalize(self) -> None:
        self.anneal = self.anneal_steps if self.anneal_steps is not None else self.steps


@dataclass
class ClassifierConfig:
    """Route `classifier` (HieraMAS stage 2): candidate DAGs run per training query, labelled
    good/bad from their rollouts, and the graph-score head learns P(good | DAG, query)."""

    samples: int = 1
    """Independent runs of each (query, candidate); labels compare mean rewards."""
    resample: Literal["all", "informative"] = "all"
    """Which queries get runs 2..samples: `all`, or `informative` (only those whose first run
    already separates the candidates)."""
    proposal: Literal["random", "edge_head"] = "random"
    """Where training candidates come from: `random` (HieraMAS generator) or `edge_head`."""
    label_rule: Literal["median", "accuracy", "correct_cheap"] = "median"
    """`median`: good = reward above the query's median; `accuracy`: mean correctness above the
    median (cost ignored); `correct_cheap`: correct and cheap."""
    min_spread: float = 0.05
    """A query whose candidates' labels span less than this is dropped (no topology signal)."""
    epochs: int = 60
    """Maximum passes over the training rollouts."""
    batch_size: int = 64
    """Rollouts per gradient step."""
    lr: float = 3e-3
    """Adam learning rate of the graph-score head."""
    weight_decay: float = 1e-4
    """Adam weight decay."""
    patience: int = 10
    """Epochs without a better validation per-query ROC-AUC before stopping."""
    val_fraction: float = 0.25
    """Fraction of training queries held out for early stopping (when the validation queries
    carry no label)."""

    def check(self) -> Problems:
        for name in ("samples", "epochs", "batch_size", "lr", "patience"):
            yield from positive(name, getattr(self, name))
        yield from non_negative("min_spread", self.min_spread)
        yield from non_negative("weight_decay", self.weight_decay)
        if not 0.0 < self.val_fraction < 1.0:
            yield "val_fraction", f"must be in (0, 1), got {self.val_fraction}"


@dataclass
class EdgesConfig:
    """Route `edges`: the policy's edge head trained with REINFORCE after stage 1 (mixtures
    frozen), with the same credit options as the mixtures."""

    steps: int = 40
    """Optimizer steps."""
    batch_size: int = 8
    """Queries per step."""
    lr: float = 3e-3
    """Adam learning rate of the edge head."""
    entropy_beta: float = 0.01
    """Entropy bonus weight."""
    temperature: float = 1.0
    """Sampling temperature of the DAG distribution during training."""
    baseline: Literal["none", "moving_average", "counterfactual"] = "counterfactual"
    """`none`, `moving_average`, or `counterfactual` (the topology re-sampled with the mixtures
    held fixed, through the cache)."""
    k: int = 2
    """Counterfactual: re-drawn DAGs per design."""
    momentum: float = 0.9
    """Moving average: weight of the old mean at each update."""
    val_every: int = 10
    """Validate the greedy DAG (and keep the best edge head) every this many steps."""
    checkpoint_every: int = 10
    """Save a resumable checkpoint every this many steps."""

    def check(self) -> Problems:
        for name in ("steps", "batch_size", "lr", "temperature", "k", "val_every", "checkpoint_every"):
            yield from positive(name, getattr(self, name))
        yield from non_negative("entropy_beta", self.entropy_beta)
        if not 0.0 <= self.momentum < 1.0:
            yield "momentum", f"must be in [0, 1), got {self.momentum}"


@dataclass
class TopologyConfig(CandidateDAGs):
    """How the DAG between supernodes is learned and chosen (`policy/choose.py`); the candidate
    DAGs' settings (`n_candidates`, `density_min`, `density_max`) are `mas.settings.CandidateDAGs`."""

    method: Literal["classifier", "edges"] = "classifier"
    """`classifier` (graph-score head over K candidate DAGs) or `edges` (the edge head's DAG).
    The bundle records the route that was trained; an untrained head never chooses."""
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    """Route `classifier`."""
    edges: EdgesConfig = field(default_factory=EdgesConfig)
    """Route `edges`."""

    def check(self) -> Problems:
        yield from super().check()
        if self.n_candidates == 1:
            yield "n_candidates", "must be >= 2 (the classifier compares candidates), got 1"


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
    cost_lambda_range: list[float] = field(default_factory=list)
    """[lo, hi] (0 < lo < hi, 1/USD): train ONE cost-conditioned policy for every λ in the range
    (`policy/cost.py`): log λ is an input of the policy, each stage-1 episode draws its λ
    log-uniformly from the range, the design search runs at each point of `cost_lambda_grid` and
    the clone target of a query at λ is the searched design at that λ; requests then choose λ
    (`Policy.design(q, cost_lambda=...)` / `max_cost_usd=...`, `hieramas eval --cost-lambda`).
    [] (default): one fixed λ, `cost_lambda`. With a range, `cost_lambda` is the λ a request
    without one gets (clamped into the range)."""
    cost_lambda_grid: int = 7
    """With `cost_lambda_range`: λ points, log-spaced over the range (both ends included), at
    which the design search runs, the clone targets are set and the bundle records the policy's
    measured cost and accuracy (what `max_cost_usd` and `--target-cost-per-query` choose from)."""

    def check(self) -> Problems:
        yield from non_negative("cost_lambda", self.cost_lambda)
        if self.cost_lambda_range:
            r = self.cost_lambda_range
            if len(r) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in r):
                yield "cost_lambda_range", f"must be [lo, hi] (two numbers), got {r!r}"
            elif not all(math.isfinite(v) for v in r) or not 0 < r[0] < r[1]:
                yield "cost_lambda_range", f"must be [lo, hi] with finite 0 < lo < hi, got {r!r}"
        if isinstance(self.cost_lambda_grid, bool) or not isinstance(self.cost_lambda_grid, int) \
                or not 2 <= self.cost_lambda_grid <= 64:
            yield "cost_lambda_grid", f"must be an integer in 2..64, got {self.cost_lambda_grid!r}"
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
        yield from positive("k", self.k)
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
    """Show progress on stderr (a bar on a terminal, a line every few seconds in a log; `hieramas --quiet`
    silences it too)."""
    group: str | None = None
    """wandb group: the runs of one experiment (`hieramas experiment` sets it to the experiment's name)."""
    job_type: str = "train"
    """wandb job type: `train` for a training run (an experiment's evaluation run is `eval`)."""
    tags: list[str] = field(default_factory=list)
    """wandb tags, e.g. the ablation (`hieramas experiment` adds the config's name and each override)."""

    def check(self) -> Problems:
        yield from positive("log_every", self.log_every)
        yield from positive("designs_every", self.designs_every)
        if not all(isinstance(t, str) and t.strip() for t in self.tags):
            yield "tags", f"must be a list of non-empty strings, got {self.tags!r}"


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
    client: ClientSection = field(default_factory=ClientSection)
    """LLM client."""
    backend: BackendSettings = field(default_factory=BackendSettings)
    """Offline backends (sim, replay)."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    """Rollout cache."""
    policy: PolicySection = field(default_factory=PolicySection)
    """GNN policy."""
    stage1: Stage1Config = field(default_factory=Stage1Config)
    """Mixture-selector training."""
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    """Topology learning (route `classifier` or `edges`)."""
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
        self.run.finalize(task=self.task.name, cost_lambda=self.reward.cost_lambda)
        self.stage1.finalize()


def validate(cfg: Any, prefix: str = "") -> Iterator[str]:
    """Yield `section.field: message` for every invalid value, walking nested sections (each
    defines `check()`): the one place a config is validated."""
    for f in dataclasses.fields(cfg):
        section = object.__getattribute__(cfg, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        path = f"{prefix}{f.name}"
        check = getattr(section, "check", None)
        for name, message in (check() if check else ()):
            yield f"{path}.{name}: {message}"
        yield from validate(section, f"{path}.")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (defaults when `path` is None) and apply dotted `key=value` overrides."""
    data = read_yaml(Path(path)) if path is not None else {}
    data = merge(data, parse_overrides(list(overrides or [])))
    return from_dict(Config, data)


@dataclass
class CollectConfig:
    """A `hieramas collect` run (paths are relative to the config file's folder)."""

    task: str = ""
    """Task name (`hieramas tasks list`). Required."""
    pool: str = ""
    """Pool name (`data/pools/<name>.yaml`) or a path. Required."""
    designs: list[Any] = field(default_factory=list)
    """What runs on every question: baseline methods (`single`, `vote`, `chain`, ...), Design
    JSON/YAML files, or inline Designs. Required."""
    cache: str = ""
    """The rollout cache (SQLite, mode rw). Required."""
    split: str = "test"
    """Split passed to `Task.load`."""
    data: str | None = None
    """Optional question file (jsonl / jsonl.gz)."""
    limit: int | None = None
    """First N questions (None: all)."""
    samples: int = 1
    """Designs run with sample indices 0..samples-1."""
    temperature: float = 0.0
    """Sampling temperature of every call."""
    budget_usd: float | None = None
    """Spend cap of this run (None: none); cache hits are free."""
    max_in_flight: int = 32
    """Calls in flight across all queries (the executor's bound)."""
    client: ClientConfig = field(default_factory=ClientConfig)
    """Client limits and retries (`llm.client.ClientConfig`; its `budget_usd` is the top-level one
    above). Where the calls run is a flag: `hieramas collect --executor ray`."""
    backend: BackendSettings = field(default_factory=BackendSettings)
    """Offline backends' settings."""
    seed: int = 0
    """Seeds the `random` baseline topology and the client's backoff jitter."""
    anchor: str | None = None
    """Synthesizer / decision / aggregator model of the anchored baselines (MoA, debate, fixed
    topologies); None: the pool model with the best single accuracy on train + val questions,
    ranked on first use (set it with `--executor ray`: each worker would rank the pool itself)."""
    out: str | None = None
    """Optional traces jsonl."""

    def check(self) -> Problems:
        for name in ("task", "pool", "cache"):
            if not getattr(self, name):
                yield name, "required"
        if not self.designs:
            yield "designs", "required (a non-empty list)"
        for name in ("samples", "max_in_flight"):
            yield from positive(name, getattr(self, name))
        if self.limit is not None:
            yield from positive("limit", self.limit)
        if self.budget_usd is not None and not (0 <= self.budget_usd < float("inf")):
            yield "budget_usd", f"must be a finite number >= 0, got {self.budget_usd}"
        if not 0.0 <= self.temperature <= 2.0:
            yield "temperature", f"must be in [0, 2], got {self.temperature}"
        yield from non_negative("seed", self.seed)


def load_section(cls: type, path: str | Path, where: str) -> Any:
    """A config file of another shape than a run (e.g. `CollectConfig`) through the same machinery:
    YAML with `base:`, typed fields, every problem named (`<where>: field: message`)."""
    path = Path(path)
    try:
        obj = from_dict(cls, read_yaml(path))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    problems = [f"{where}: {p}" for p in validate_section(obj)]
    if problems:
        raise ConfigError("; ".join(problems))
    return obj


def validate_section(obj: Any) -> Iterator[str]:
    """Problems of one section and its nested sections (`field: message`)."""
    check = getattr(obj, "check", None)
    for name, message in (check() if check else ()):
        yield f"{name}: {message}"
    yield from validate(obj)
