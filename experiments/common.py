"""Set-up shared by the topology experiments: the demo's configuration, client and decision model
(`demo_runs`), and a trained, frozen stage-1 selector per seed (`train_selector`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class DemoRuns:
    """The demo's settings with `overrides`, one client (and rollout cache) for every seed, the
    decision model fixed by the demo's rule, and the held-out queries."""

    out: Path
    ns: argparse.Namespace
    client: Any
    cfg0: Any
    test: list

    def config(self, seed: int):
        from hieramas_gnn.commands import demo

        return demo.demo_config(self.out, seed, self.ns)


def demo_runs(out: str | Path, overrides: list[str], *, quick: bool = False, pool: str | None = None) -> DemoRuns:
    """Offline defaults, no awaited sim latency (as in the demo), the client, the decision pick."""
    from hieramas_gnn.commands import demo
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.setup import client_settings, load_models, load_questions, make_client

    ensure_offline_defaults()
    out = Path(out)
    ns = argparse.Namespace(quick=quick, pool=pool or demo.DEFAULT_POOL, wandb="disabled", overrides=list(overrides))
    cfg0 = demo.demo_config(out, 0, ns)
    client = make_client(client_settings(cfg0), load_models(cfg0)[0])
    if cfg0.pool.decision is None:  # the demo's rule, so a demo run folder's stage-1 runs are reused
        ns.overrides = [*ns.overrides, f"pool.decision={demo.pick_decision(cfg0, client)[0]}"]
        cfg0 = demo.demo_config(out, 0, ns)
    _, _, test, _ = load_questions(cfg0)
    return DemoRuns(out, ns, client, cfg0, test)


def train_selector(cfg, client) -> tuple[Any, Any, Any]:
    """(setup, the frozen stage-1 selector as a `stage2.DesignFn`, `Stage2Config`) for one seed;
    stage 1 resumes from (or reuses) the run folder of `cfg`."""
    from hieramas_gnn.config_io import from_dict
    from hieramas_gnn.tracking import Tracker
    from hieramas_gnn.train import stage2
    from hieramas_gnn.train.setup import build_setup
    from hieramas_gnn.train.stage1 import train_stage1

    setup = build_setup(cfg, client=client)
    with Tracker(cfg) as tracker:
        train_stage1(cfg, setup, tracker)
    select = stage2.policy_selector(setup.policy, setup.builder, setup.decision)
    return setup, select, from_dict(stage2.Stage2Config, cfg.stage2.options, "stage2.options")
