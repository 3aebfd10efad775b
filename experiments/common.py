"""Set-up shared by the topology experiments, built on the library (never on `commands`): the
demo's configuration with overrides, one client and rollout cache for every seed
(`demo_runs`), and a trained, frozen stage-1 selector per seed (`train_selector`); the
results writer of the replay experiments (`write_results`: `<stem>.json` + `<stem>.md`); and the
re-evaluation set-up of a finished experiment folder (`folder_runner`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def write_results(folder: str | Path, stem: str, data: dict[str, Any], markdown: str) -> None:
    """`folder/<stem>.json` (the data, indented) and `folder/<stem>.md` (the table), folder made."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (folder / f"{stem}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")


@dataclass
class FolderRun:
    """A finished experiment folder (`hieramas experiment --out`) set up to run its bundles again:
    its config and seed-0 settings (with `overrides` added), its pool, a runner through one client,
    and its held-out questions (checked to be those of its `per_query.json`)."""

    config: Path
    cfg0: Any
    pool: Any
    runner: Any
    test: list
    task: Any


def folder_runner(folder: str | Path, overrides: list[str] = ()) -> FolderRun:
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, load_roles, make_client
    from hieramas_gnn.eval.experiment import seed_config
    from hieramas_gnn.mas.runner import ExecutorRunner
    from hieramas_gnn.paths import REPO_ROOT

    folder = Path(folder)
    results = json.loads((folder / "results.json").read_text())
    saved = json.loads((folder / "per_query.json").read_text())
    config = Path(results["config"])
    config = config if config.is_absolute() else REPO_ROOT / config
    cfg0 = seed_config(config, folder, 0, [*results.get("overrides", []), *overrides])
    pool, _ = load_models(cfg0)
    client = make_client(ClientSettings.from_config(cfg0), pool)
    _, _, test, task = load_questions(cfg0)
    if [q.id for q in test] != saved["question_ids"]:
        raise SystemExit(f"{folder}: the config's held-out questions are not those of per_query.json")
    roleset, _ = load_roles(cfg0, task)
    runner = ExecutorRunner(client, task, roleset, max_in_flight=cfg0.client.max_in_flight)
    return FolderRun(config, cfg0, pool, runner, test, task)


@dataclass
class DemoRuns:
    """The demo's settings with `overrides`, one client (and rollout cache) for every seed, and the
    held-out queries."""

    out: Path
    config_path: Path
    overrides: list[str]
    client: Any
    cfg0: Any
    test: list

    def config(self, seed: int):
        from hieramas_gnn.eval.experiment import seed_config

        return seed_config(self.config_path, self.out, seed, self.overrides)


def demo_runs(out: str | Path, overrides: list[str], *, quick: bool = False, pool: str | None = None) -> DemoRuns:
    """Offline defaults, the demo's mixture config the topology experiments run on
    (`demo_mixtures.yaml`; `--quick`: demo_mixtures_quick.yaml), the client, the test queries."""
    from hieramas_gnn.eval.experiment import MIXTURES_CONFIG, MIXTURES_QUICK, seed_config
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.build import ClientSettings, load_models, load_questions, make_client

    ensure_offline_defaults()
    out = Path(out)
    config = MIXTURES_QUICK if quick else MIXTURES_CONFIG
    overrides = ["tracking.wandb=disabled", *([f"pool.name={pool}"] if pool else []), *overrides]
    cfg0 = seed_config(config, out, 0, overrides)
    client = make_client(ClientSettings.from_config(cfg0), load_models(cfg0)[0])
    _, _, test, _ = load_questions(cfg0)
    return DemoRuns(out, config, overrides, client, cfg0, test)


def train_selector(cfg, client) -> tuple[Any, Any, Any]:
    """(setup, the frozen stage-1 selector as a `stage2.DesignFn`, `ClassifierTraining`) for one seed;
    the decision model and stage 1 resume from (or reuse) the run folder of `cfg`."""
    from hieramas_gnn.tracking import Tracker
    from hieramas_gnn.train import topology_classifier
    from hieramas_gnn.train.pipeline import resolve_decision
    from hieramas_gnn.build import build_training
    from hieramas_gnn.train.stage1 import train_stage1

    Path(cfg.run.dir).mkdir(parents=True, exist_ok=True)
    setup = build_training(cfg, client=client)
    setup.decision = resolve_decision(cfg, setup)
    with Tracker(cfg) as tracker:
        train_stage1(cfg, setup, tracker)
    select = topology_classifier.policy_selector(setup.policy, setup.builder, setup.decision)
    return setup, select, topology_classifier.ClassifierTraining.from_topology(cfg.topology, cfg.run.seed_for("stage2"))
