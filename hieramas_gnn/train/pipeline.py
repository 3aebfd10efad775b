"""The whole method as one resumable pipeline: stage 1 (mixtures) -> topology -> export.

`train_pipeline(cfg)` is what `hieramas train --config FILE` runs (and the demo and the
experiments call). Every phase leaves its state in the run folder, and re-running the same
command continues where it stopped; every LLM call already paid for is in the rollout cache, so
nothing is paid twice:

1. **Decision model**: `pool.decision`, or with `stage1.warm_start: search` (or
   `search_per_cluster`) the decision of the best simple design found on the search queries
   (`train/warm_start.py`, `design_search.json`), or the pool model with the best single-model
   reward on training + validation queries (`mas.single.best_single_model`); recorded in
   `decision.json`. With `search_per_cluster`, the same search per cluster of the search queries
   (`train/cluster_search.py`, `cluster_search.json`) gives each query its cluster's design.
2. **Stage 1** (`train/stage1.py`): (with a warm start, the searched design — per query, its
   cluster's — behaviour-cloned and validated as step 0) REINFORCE on the mixtures over random
   DAGs; `checkpoint.pt` every few steps, the best-validation weights in `best.pt`.
3. **Topology** (`topology.method`): `classifier` — HieraMAS stage 2 (`train/topology_classifier.py`):
   candidate DAGs, labels from rollouts, the graph-score head; or `edges` — the edge head with
   REINFORCE (`train/edges.py`, resumable from `edges_checkpoint.pt`). The trained head's weights
   and the route go to `topology.pt` / `topology.json`. A route whose head ended up untrained
   (e.g. no candidate ever changed an answer) is recorded as `random`, so an untrained head
   never chooses anything.
4. **Export**: the bundle `policy/` (weights, manifest with the `ChoiceSettings`), also logged
   as a wandb artifact.

Validation and every later use choose designs through `policy.choose.DesignChooser` built from
the recorded `ChoiceSettings` (`chooser(...)`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hieramas_gnn.build import TrainingSetup, build_training, choice_settings
from hieramas_gnn.bundle import export_policy, portable_roles, portable_task, run_split
from hieramas_gnn.config import Config, load_config
from hieramas_gnn.config_io import dump_yaml, to_dict
from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import dumps, folder_lock
from hieramas_gnn.mas.runner import labelled
from hieramas_gnn.mas.single import best_single_model
from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.policy.choose import DesignChooser
from hieramas_gnn.progress import phase
from hieramas_gnn.tracking import Tracker
from hieramas_gnn.train import cluster_search, cost_search, topology_classifier, warm_start
from hieramas_gnn.train.edges import EdgesTrainer
from hieramas_gnn.train.rewards import reward_function
from hieramas_gnn.train.stage1 import Stage1Result, train_stage1

STAGE2_AXIS = "stage2/epoch"


@dataclass
class TopologyResult:
    """What the topology phase produced (also written to `topology.json`)."""

    method: str
    route: str
    trained: bool
    rollouts: int
    summary: dict[str, Any]


@dataclass
class PipelineResult:
    setup: TrainingSetup
    chooser: DesignChooser
    stage1: Stage1Result
    topology: TopologyResult
    bundle: Path


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim`; elsewhere nothing).
    A phase that built and dropped many objects (the design search's traces, a clone step's
    autograd tensors) leaves its freed memory in the process, where the next phase's peak stacks
    on top of it; nothing computed changes."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def remembering_hits(runner: Any) -> Any:
    """`LLMClient.remembering_hits` of the runner's client (a design search asks the calls that
    designs share again and again); nothing for a runner without one (e.g. Ray's workers)."""
    hold = getattr(getattr(runner, "client", None), "remembering_hits", None)
    return hold() if hold is not None else contextlib.nullcontext()


def _searched_decision(cfg: Config, setup: TrainingSetup, path: Path, search_memo: dict | None) -> str:
    """`resolve_decision` with `stage1.warm_start: search` or `search_per_cluster`."""
    extra = {}
    if setup.cost_grid is not None:
        with labelled(setup.runner, "design search per cost weight"):
            found = cost_search.resolve(cfg, setup, cfg.pool.decision or None)
        extra = {"per_cost_lambda": {f"{p['cost_lambda']:g}": p["decision"] for p in setup.cost_grid.points}}
        phase("design search per cost weight: " + "; ".join(
            f"λ={p['cost_lambda']:g} {p['design']}" for p in setup.cost_grid.points))
    elif cfg.stage1.warm_start == "search_per_cluster":
        with labelled(setup.runner, "design search per cluster"):
            found, clusters = cluster_search.resolve_both(cfg, setup, reward_function(cfg.reward).of_trace,
                                                          cfg.pool.decision or None, search_memo)
        embed = cluster_search.embedder_fn(setup.builder.features.embedder)
        setup.warm_designs = lambda questions: clusters.designs_for(questions, embed)
        extra = {"partition": clusters.partition.name, "cluster_designs": sorted(set(clusters.to_dict()["summaries"]))}
        phase(f"design search per cluster: {clusters.partition.name}, designs "
              f"{', '.join(extra['cluster_designs'])} (decision model {found.decision})")
    else:
        with labelled(setup.runner, "design search"):
            found = warm_start.resolve(cfg, setup, reward_function(cfg.reward).of_trace, cfg.pool.decision or None)
        phase(f"design search: warm start from {found.design.summary()} (decision model {found.decision})")
    setup.warm_design = found.design
    if not path.exists():
        _write_json(path, {"decision": found.decision, "rule": "the decision of the searched design "
                           "(design_search.json)" if not cfg.pool.decision else "pool.decision",
                           "design": found.design.summary(), **extra})
    return found.decision


def resolve_decision(cfg: Config, setup: TrainingSetup, search_memo: dict | None = None) -> str:
    """The configured decision model; with `stage1.warm_start: search` the decision of the
    searched design (`train/warm_start.py`, which also sets `setup.warm_design`), with
    `search_per_cluster` the same, and `setup.warm_designs` gives each query its cluster's design
    (`train/cluster_search.py`); else the best single model on train + val. Recorded in
    `decision.json`. `search_memo`: the per-cluster search's outcomes (`cluster_search.MemoRunner`),
    shared with other runs of the same client, task and roleset."""
    path = Path(cfg.run.dir) / "decision.json"
    if setup.cost_grid is not None and cfg.stage1.warm_start == "search_per_cluster":
        raise UserError("reward.cost_lambda_range: a cost-conditioned run searches one design per grid λ; "
                        "stage1.warm_start must be search or none, not search_per_cluster")
    if cfg.stage1.warm_start in ("search", "search_per_cluster"):
        with remembering_hits(setup.runner):
            return _searched_decision(cfg, setup, path, search_memo)
    if cfg.pool.decision:
        return cfg.pool.decision
    if path.exists():
        return json.loads(path.read_text())["decision"]
    with labelled(setup.runner, "decision model"):
        name, rows = best_single_model(setup.runner, setup.runner.roleset, setup.builder.llm_names,
                                       [*setup.train, *setup.val],
                                       reward_function(cfg.reward))
    _write_json(path, {"decision": name, "rule": "best single-model reward on train + val", "rows": rows})
    phase(f"decision model: {name} (best single-model reward on {len(setup.train) + len(setup.val)} "
          "train + val questions)")
    return name


def fit_topology(cfg: Config, setup: TrainingSetup, tracker: Any, stage1: Stage1Result) -> TopologyResult:
    """Train the configured topology route, or reload it when `topology.json` says it is done for
    this very stage-1 selector (a stage 1 trained further since invalidates it)."""
    run_dir = Path(cfg.run.dir)
    done, state = run_dir / "topology.json", run_dir / "topology.pt"
    method, policy = cfg.topology.method, setup.policy
    head = policy.score_head if method == "classifier" else policy.edge_head
    selector = {"stage1_step": stage1.step, "stage1_best_step": stage1.best_step}
    if done.exists() and state.exists():
        recorded = json.loads(done.read_text())
        if recorded.pop("selector", None) == selector:
            head.load_state_dict(torch.load(state, weights_only=False))
            return TopologyResult(**recorded)
        for stale in (done, state, run_dir / "edges_checkpoint.pt", run_dir / "edges_best.pt"):
            stale.unlink(missing_ok=True)
    before = setup.runner.rollouts
    if method == "classifier" and cfg.stage1.topologies == "parallel":
        # one candidate per query (the empty DAG the mixtures were trained on): nothing to classify
        trained, summary = False, {"skipped": "stage1.topologies is parallel: the only candidate is the empty DAG"}
    elif method == "classifier":
        s2cfg = topology_classifier.ClassifierTraining.from_topology(cfg.topology, cfg.run.seed_for("stage2"))
        select = topology_classifier.policy_selector(policy, setup.builder, setup.decision)
        scorer = topology_classifier.PolicyGraphScorer(policy, setup.builder)
        with labelled(setup.runner, "topology candidates"):
            res, _ = topology_classifier.fit_classifier(scorer, select, setup.train, setup.val, setup.runner,
                                                        reward_function(cfg.reward).of_trace,
                                                        len(setup.builder.role_names), s2cfg,
                                                        log=lambda m, e: tracker.log(m, e, axis=STAGE2_AXIS),
                                                        decision=setup.decision)
        trained = res.best_epoch >= 0
        summary = {"best_val_auc": res.best_val_auc, "best_epoch": res.best_epoch,
                   "train_rollouts": res.n_train_rollouts, "train_queries": res.n_train_queries}
        if not trained:
            summary["reason"] = (f"the candidate DAGs never differed in "
                                 f"{'accuracy' if s2cfg.label_rule == 'accuracy' else 'reward'} on a training "
                                 "question: nothing to learn")
    else:
        trainer = EdgesTrainer(cfg.topology.edges, cfg.reward, setup, choice_settings(cfg, "edges", setup.decision),
                               cfg.run.seed_for("edges"), run_dir, log=tracker.log)
        trainer.maybe_resume()
        res = trainer.run()
        trained = res.step > 0
        summary = {"best_val_reward": res.best_val_reward, "best_step": res.best_step, "steps": res.step}
        if not trained:
            summary["reason"] = "the edge head trained no step (topology.edges.steps)"
    result = TopologyResult(method=method, route=method if trained else "random", trained=trained,
                            rollouts=setup.runner.rollouts - before, summary=summary)
    torch.save(head.state_dict(), state)
    _write_json(done, {**result.__dict__, "selector": selector})
    phase(f"topology: {topology_line(result)}")
    return result


def topology_line(result: TopologyResult) -> str:
    """`classifier -> route classifier (120 rollouts)`, with the reason when the route fell back."""
    why = result.summary.get("reason") or result.summary.get("skipped")
    return (f"{result.method} -> route {result.route} ({result.rollouts} rollouts"
            + (f"; {result.route} because {why}" if why and result.route != result.method else "") + ")")


def train_pipeline(cfg: Config, client: Any = None, search_memo: dict | None = None) -> PipelineResult:
    """Stage 1 -> topology -> export for `cfg` (resuming every phase from the run folder).
    `search_memo`: a dict of design-search outcomes shared by runs of one client, task and roleset
    (the seeds of an experiment: `eval/experiment.run_experiment`), read and filled."""
    ensure_offline_defaults()
    if cfg.run.threads and str(cfg.run.device).startswith("cpu"):
        torch.set_num_threads(cfg.run.threads)

    run_dir = Path(cfg.run.dir)
    check_run_folder(run_dir)
    with folder_lock(run_dir, "run folder"):  # a second `hieramas train` on this folder is refused
        check_same_run(cfg, run_dir)
        dump_yaml(cfg, run_dir / "config.yaml")
        setup = build_training(cfg, client=client)
        try:
            return _phases(cfg, setup, search_memo)
        finally:
            close = getattr(setup.runner, "close", None)  # a Ray runner's workers
            if close is not None:
                close()


def check_run_folder(run_dir: Path) -> None:
    """The run folder is new, empty, or a run folder (it has `config.yaml`): training never writes
    its checkpoints, metrics and bundle into a folder of the user's other files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} (run.out_dir): is a file; choose another run.out_dir")
    if run_dir.is_dir() and not (run_dir / "config.yaml").is_file():
        theirs = sorted(p.name for p in run_dir.iterdir() if p.name != ".lock")
        if theirs:
            raise UserError(f"run folder {run_dir} (run.out_dir) holds other files ({', '.join(theirs[:5])}) and no "
                            "config.yaml of a run; choose a new or empty folder")


def measure_cost_grid(setup: TrainingSetup, settings: Any, run_dir: Path | None = None) -> None:
    """A cost-conditioned policy's measured accuracy and $/query at each grid λ on the validation
    questions, and each chosen design's mean $/query there (`policy.cost.CostGrid`: what
    `max_cost_usd` and `--target-cost-per-query` choose by), written into `setup.cost_grid` (and
    `run_dir/cost_grid.json`, which `hieramas export` reads)."""
    grid = setup.cost_grid
    chooser = DesignChooser(setup.policy, setup.builder, settings, grid)
    spent: dict[str, list[float]] = {}
    for point in grid.points:
        designs = chooser.designs(setup.val, point["cost_lambda"])
        traces = setup.runner.run(list(zip(designs, setup.val)))
        point["accuracy"] = sum(bool(t.correct) and not t.failed for t in traces) / max(len(traces), 1)
        point["cost_usd"] = sum(float(t.cost_usd) for t in traces) / max(len(traces), 1)
        point["policy_designs"] = sorted({d.summary() for d in designs})
        for d, t in zip(designs, traces):
            spent.setdefault(d.summary(), []).append(float(t.cost_usd))
    grid.designs = {k: sum(v) / len(v) for k, v in sorted(spent.items())}
    if run_dir is not None:
        _write_json(Path(run_dir) / "cost_grid.json", grid.to_dict())
    phase("cost grid (validation): " + "; ".join(f"λ={p['cost_lambda']:g} acc {p['accuracy']:.3f} "
                                                  f"${p['cost_usd']:.2e}/query" for p in grid.points))


def _phases(cfg: Config, setup: TrainingSetup, search_memo: dict | None = None) -> PipelineResult:
    run_dir = Path(cfg.run.dir)
    setup.decision = resolve_decision(cfg, setup, search_memo)
    release_freed_memory()  # the search's traces, before stage 1's clone of every training query
    if setup.cost_grid is not None and cfg.stage1.warm_start == "none":
        for point in setup.cost_grid.points:  # no search: one decision model at every λ
            point["decision"] = setup.decision
    with Tracker(cfg) as tracker:
        s1 = train_stage1(cfg, setup, tracker)
        phase(f"stage 1: {s1.step} steps, best validation reward {s1.best_val_reward:.4f} at step {s1.best_step}")
        topo = fit_topology(cfg, setup, tracker, s1)
        settings = choice_settings(cfg, topo.route, setup.decision)
        if setup.cost_grid is not None:
            with labelled(setup.runner, "cost grid"):
                measure_cost_grid(setup, settings, run_dir)
        task, roleset = setup.runner.task, setup.runner.roleset
        bundle = export_policy(setup.policy, run_dir / "policy", builder=setup.builder, decision=setup.decision,
                               pool_name=cfg.pool.name, choice=settings, family=roleset.family,
                               task=task.name, hyperparameters=to_dict(cfg),
                               extra={"run": str(run_dir), "seed": cfg.run.seed, "topology": topo.__dict__,
                                      "stage1": {"best_val_reward": s1.best_val_reward, "best_step": s1.best_step},
                                      **({"split": split} if (split := run_split(run_dir)) else {})},
                               task_questions=portable_task(task), role_prompts=portable_roles(roleset),
                               cost=setup.cost_grid.to_dict() if setup.cost_grid is not None else None)
        tracker.log_bundle(bundle)
    return PipelineResult(setup, DesignChooser(setup.policy, setup.builder, settings, setup.cost_grid), s1, topo,
                          bundle)


# Fields that may change between a run and its resumption (where output goes, how it is shown).
RESUMABLE_CHANGES = ("tracking.", "run.device", "run.threads", "client.max_in_flight", "client.executor", "client.ray_address",
                     "client.ray_workers", "cache.path", "policy.embed_cache",
                     "stage1.steps")  # more steps: stage 1 continues, and the topology is retrained


def check_same_run(cfg: Config, run_dir: Path) -> None:
    """Refuse to resume a run folder that was started with another config (its checkpoints and
    topology state would silently be reused under settings they were not made with)."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return
    before = _flat(to_dict(load_config(path, [f"run.out_dir={cfg.run.out_dir}"]), derived=False))
    now = _flat(to_dict(cfg, derived=False))
    changed = [k for k in sorted(set(before) | set(now))
               if before.get(k) != now.get(k) and not k.startswith(RESUMABLE_CHANGES)]
    if changed:
        k = changed[0]
        raise UserError(f"run folder {run_dir} was started with another config ({k}: {before.get(k)!r} there, "
                        f"{now.get(k)!r} now{f', and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                        "re-run with the same config to resume, or choose another run.out_dir")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dumps(data, indent=2, default=float) + "\n")
    tmp.replace(path)
