"""`hieramas demo [--out DIR] [--seeds N] [--quick]`: the whole product on the embedded default.

The demo is `hieramas train` + `hieramas eval` + a report on `experiments/configs/demo.yaml`
(`--quick`: `demo_quick.yaml`, every size shrunk): for each seed the pipeline trains stage 1
(mixture selector), then the configured topology route, and exports the bundle; the bundle is
loaded back as a user would load it and evaluated on the held-out queries next to the baselines
of `hieramas baselines` and a random DAG from the same candidates. Writes `report.md`,
`pareto.png`, `topology.png`, `results.json` (mean ± std over seeds) and the bundles
(`runs/seed<k>/policy/`) to `--out`; `policy/` is the first seed's bundle. Nothing leaves the
machine: every LLM call is simulated and cached in `--out/cache/rollouts.sqlite`, so a re-run
continues where it stopped.
"""

from __future__ import annotations

import argparse

from hieramas_gnn.bundle import _replace_bundle, check_bundle_out
from hieramas_gnn.errors import UserError
from hieramas_gnn.eval import experiment, report
from hieramas_gnn.eval.baselines import FITTED, GROUPS
from hieramas_gnn.guards import check_report_out
from hieramas_gnn.paths import ensure_offline_defaults


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train and evaluate on the offline sim pool; write a report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds (report gives mean ± std)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, ~1 minute)")
    p.add_argument("--eval-runs", type=int, default=4,
                   help="independent runs of the learned policy (and its random-DAG control) per held-out "
                        "query; accuracy is their mean (default 4: topology moves accuracy by under a "
                        "point, one run of 512 queries cannot resolve that)")
    p.add_argument("--config", default=None, help="run config (default: experiments/configs/demo.yaml, "
                   "or demo_quick.yaml with --quick)")
    p.add_argument("--pool", default=None, help="pool name or YAML (default: the config's, `sim`)")
    p.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default="offline",
                   help="wandb mode (default offline; files stay in --out)")
    p.add_argument("--baselines", nargs="+", default=None, metavar="METHOD",
                   help="baselines on the same held-out queries (`hieramas baselines --methods` names, "
                        "e.g. single vote moa debate router cascade best_single oracle; fitted ones are "
                        "fit on the config's train + val split); default: single moa random chain complete vote")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides, e.g. reward.cost_lambda=50 stage1.steps=100")
    p.set_defaults(func=run)


def _copy_bundle(src, dst) -> None:
    """The first seed's bundle as `dst` (checked: new, empty or a bundle), replaced atomically."""
    import shutil
    import tempfile
    from pathlib import Path


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
    from pathlib import Path


    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_runs < 1:
        raise UserError(f"--eval-runs must be >= 1, got {args.eval_runs}")
    ensure_offline_defaults()
    config = args.config or (experiment.DEMO_QUICK if args.quick else experiment.DEMO_CONFIG)
    overrides = [f"tracking.wandb={args.wandb}", *([f"pool.name={args.pool}"] if args.pool else []),
                 *args.overrides]
    baselines = args.baselines or (("single", "moa", "random") if args.quick else experiment.DEFAULT_BASELINES)

    unknown = [m for m in baselines if m.partition(":")[0] not in GROUPS + FITTED]
    if unknown:
        raise UserError(f"--baselines: unknown method {unknown[0]!r} (known: {', '.join(GROUPS + FITTED)})")
    out = Path(args.out)

    check_report_out(out, "--out", ("results.json", "runs", "cache"))  # new, empty, or an earlier demo's
    check_bundle_out(out / "policy")
    result = experiment.run_experiment(config, out, seeds=args.seeds, eval_runs=args.eval_runs,
                                       baselines=baselines, overrides=overrides, title="hieramas demo",
                                       log=lambda line: print(line, flush=True))
    _copy_bundle(out / "runs" / "seed0" / "policy", out / "policy")
    print(report.markdown_table(result.rows))
    print("\n".join(result.claims))
    print(f"wrote {out}/report.md, results.json, pareto.png, topology.png, policy/ in {result.meta['wall_s']:.0f}s")
    return 0
