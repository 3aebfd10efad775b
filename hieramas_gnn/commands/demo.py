"""`hieramas demo [--out DIR] [--seeds N] [--quick]`: the whole product on the embedded default.

The demo is `hieramas experiment` on `experiments/configs/demo.yaml` (`--quick`:
`demo_quick.yaml`, every size shrunk to a smoke run of a minute or two): for each seed the
pipeline trains stage 1 (mixture selector), then the configured topology route, and exports the
bundle; the bundle is loaded back as a user would load it and evaluated on the held-out test
questions next to the baselines of `hieramas baselines` and a random DAG from the same
candidates. Writes `report.md`, `pareto.png`, `topology.png`, `results.json` (mean ± std over
seeds) and the bundles (`runs/seed<k>/policy/`) to `--out`; `policy/` is the first seed's
bundle. Nothing leaves the machine: every LLM call is simulated and cached in
`--out/cache/rollouts.sqlite`, so a re-run continues where it stopped. wandb logs offline into
`--out` (one group, named after `--out`: each seed's training run and the evaluation run with
the test accuracy, cost and every baseline). Progress goes to stderr (`--quiet` silences it).
For another config use `hieramas experiment --config FILE`.
"""

from __future__ import annotations

import argparse

from hieramas_gnn.commands.experiment import add_experiment_args, run_experiment_command


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the whole product on the offline sim pool: train, evaluate, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run: demo_quick.yaml)")
    p.add_argument("--config", default=None, help=argparse.SUPPRESS)  # kept for old scripts: `hieramas experiment --config`
    add_experiment_args(p, wandb_default="offline")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hieramas_gnn.eval import experiment

    config = args.config or (experiment.DEMO_QUICK if args.quick else experiment.DEMO_CONFIG)
    quick_baselines = ("single", "moa", "random") if args.quick and not args.config else None
    return run_experiment_command(args, config=config, out=args.out, title="hieramas demo",
                                  default_baselines=quick_baselines)
