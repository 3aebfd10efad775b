"""`hieramas experiment --config FILE [--out DIR] [--seeds N] ...`: one whole experiment.

For each seed `hieramas train` (stage 1, the topology route, the bundle); then each bundle is
loaded back as a user would load it and evaluated on the config's held-out test questions next
to the baselines of `hieramas baselines` and a random DAG from the same candidates; then the
report. Writes `report.md`, `pareto.png`, `topology.png`, `results.json` (mean ± std over
seeds), `per_query.json` and the bundles (`runs/seed<k>/policy/`; `policy/` is the first seed's)
to `--out`. Every LLM call goes through the rollout cache `--out/cache/rollouts.sqlite`, so a
re-run continues where it stopped and pays nothing twice.

wandb: every seed's training run (job type `train`) and one evaluation run (job type `eval`:
`test/accuracy`, `test/cost_usd`, ... of the learned policy, `baselines/<method>/...` of every
other row of the report, the LLM cost paid now / cached / total, the results and chosen-design
tables, the plots) form one group, named `--name` (default: the name of `--out`), tagged with
the config's name, each `--set` override and `--tag`s: the dashboard compares ablations by group
and tag. Progress goes to stderr (`--quiet` silences it).

`hieramas demo` is this command on the embedded default (`experiments/configs/demo.yaml`, or
`demo_quick.yaml` with `--quick`).

Example (an ablation of the cost weight, two groups side by side on the dashboard):
    hieramas experiment --config experiments/configs/demo.yaml --out runs/lambda50 --set reward.cost_lambda=50
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hieramas_gnn.errors import UserError

WANDB_MODES = ("auto", "online", "offline", "disabled")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("experiment", help="train seeds, evaluate on held-out questions next to baselines, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="run config (YAML, as for `hieramas train`)")
    p.add_argument("--out", default=None, help="output folder (default: runs/experiments/<config name>)")
    add_experiment_args(p, wandb_default="auto")
    p.set_defaults(func=run)


def add_experiment_args(p: argparse.ArgumentParser, *, wandb_default: str, seeds: int = 3) -> None:
    """The flags `hieramas experiment` and `hieramas demo` share."""
    p.add_argument("--seeds", type=int, default=seeds, help=f"training seeds (the report gives mean ± std; default {seeds})")
    p.add_argument("--eval-runs", type=int, default=4,
                   help="independent runs of the learned policy (and its random-DAG control) per held-out "
                        "question; accuracy is their mean (default 4: topology moves accuracy by under a "
                        "point, one run of 512 questions cannot resolve that)")
    p.add_argument("--pool", default=None, help="pool name or YAML (default: the config's)")
    p.add_argument("--wandb", choices=WANDB_MODES, default=wandb_default,
                   help=f"wandb mode (default {wandb_default}; `auto`: online when WANDB_API_KEY is set, else "
                        "offline; offline files stay in --out)")
    p.add_argument("--name", default=None,
                   help="the experiment's name: its wandb group (default: the name of the --out folder)")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                   help="a wandb tag of every run of the experiment (repeatable); the config's name and each "
                        "--set override are tags already")
    p.add_argument("--baselines", nargs="+", default=None, metavar="METHOD",
                   help="baselines on the same held-out questions (`hieramas baselines --methods` names, "
                        "e.g. single vote moa debate router cascade best_single oracle; fitted ones are "
                        "fit on the config's train + val split); default: single moa random chain complete vote")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides, e.g. reward.cost_lambda=50 stage1.steps=100")


def _copy_bundle(src, dst) -> None:
    """The first seed's bundle as `dst` (checked: new, empty or a bundle), replaced atomically."""
    import shutil
    import tempfile

    from hieramas_gnn.bundle import _replace_bundle, check_bundle_out

    dst = Path(dst)
    check_bundle_out(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        for item in Path(src).iterdir():
            shutil.copy2(item, tmp / item.name)
        _replace_bundle(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if not config.is_file():
        raise UserError(f"--config {args.config}: no such file")
    out = args.out or str(Path("runs") / "experiments" / config.stem)
    return run_experiment_command(args, config=config, out=out, title=f"hieramas experiment: {config.stem}",
                                  default_baselines=None)


WANDB_TAG_MAX = 64  # wandb refuses longer tags


def run_experiment_command(args: argparse.Namespace, *, config, out: str, title: str,
                           default_baselines) -> int:
    """The experiment of `args` on `config` into `out` (shared by `experiment` and `demo`)."""
    from hieramas_gnn.bundle import check_bundle_out
    from hieramas_gnn.eval import experiment, report
    from hieramas_gnn.eval.baselines import FITTED, GROUPS
    from hieramas_gnn.guards import check_report_out
    from hieramas_gnn.paths import ensure_offline_defaults

    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_runs < 1:
        raise UserError(f"--eval-runs must be >= 1, got {args.eval_runs}")
    ensure_offline_defaults()
    overrides = [f"tracking.wandb={args.wandb}", *([f"pool.name={args.pool}"] if args.pool else []),
                 *args.overrides]
    baselines = args.baselines or default_baselines or experiment.DEFAULT_BASELINES
    unknown = [m for m in baselines if m.partition(":")[0] not in GROUPS + FITTED]
    if unknown:
        raise UserError(f"--baselines: unknown method {unknown[0]!r} (known: {', '.join(GROUPS + FITTED)})")
    out_path = Path(out)
    check_report_out(out_path, "--out", ("results.json", "runs", "cache"))  # new, empty, or an earlier experiment's
    check_bundle_out(out_path / "policy")
    bad = [t for t in args.tags if not t.strip() or len(t) > WANDB_TAG_MAX]
    if bad:
        raise UserError(f"--tag: a wandb tag must be 1 to {WANDB_TAG_MAX} characters, got {bad[0]!r}")
    # each --set override also tags the runs, so a dashboard can filter by it; one too long for a tag
    # (a path, say) stays out of the tags and is still in every run's config
    tags = [Path(config).stem, *[o for o in args.overrides if len(o) <= WANDB_TAG_MAX], *args.tags]
    result = experiment.run_experiment(config, out_path, seeds=args.seeds, eval_runs=args.eval_runs,
                                       baselines=baselines, overrides=overrides, title=title,
                                       log=lambda line: print(line, flush=True),
                                       group=args.name or out_path.resolve().name, tags=tags)
    _copy_bundle(out_path / "runs" / "seed0" / "policy", out_path / "policy")
    print(report.markdown_table(result.rows))
    print("\n".join(result.claims))
    print(f"llm: {result.meta['llm_cost']}")
    wandb_note = "" if args.wandb == "disabled" else f"; wandb group {result.meta['group']!r}"
    print(f"wrote {out_path}/report.md, results.json, pareto.png, topology.png, policy/ in "
          f"{result.meta['wall_s']:.0f}s{wandb_note}")
    return 0
