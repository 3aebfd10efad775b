"""`hieramas report DIR [DIR ...] [--out OUT]`: the cost–accuracy frontier of learned policies
against every baseline, from experiment folders.

Each DIR is a folder written by `hieramas demo --config CONFIG --out DIR` (one training config,
several seeds, the baselines on the same held-out questions). Give one folder per cost weight λ
to get the frontier:

    for l in 300 1000 3000; do
      hieramas demo --config experiments/configs/replay_math_l5.yaml --out runs/math/lambda$l \\
          --baselines single vote moa debate router cascade best_single oracle --set reward.cost_lambda=$l
    done
    hieramas report runs/math/lambda* --out runs/math/report

Writes OUT/report.md (per task: every learned point with mean ± std over seeds, every baseline,
the frontier checks — at no more than a baseline's cost, at least its accuracy, paired over the
same questions — and the designs the policy chose per query type), OUT/frontier_<task>.png and
OUT/report.json. Folders of several tasks are reported task by task. `--against BASE` writes an
ablation table instead: each DIR's learned policy against BASE's (same task and test questions),
mean ± std over seeds and the paired gap.
"""

from __future__ import annotations

import argparse

from hieramas_gnn.eval.frontier import report
from hieramas_gnn.guards import check_apart, check_report_out


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="the learned frontier vs every baseline, from experiment folders",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", metavar="DIR", help="experiment folders (`hieramas demo --out DIR`)")
    p.add_argument("--out", default="runs/report", help="output folder (default: runs/report)")
    p.add_argument("--against", default=None, metavar="BASE",
                   help="an ablation table instead: every DIR's learned policy against BASE's, paired "
                        "over the same test questions (mean ± std over seeds)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path


    check_apart(args.out, "--out", {f"DIR {f}": f for f in [*args.folders, *([args.against] if args.against else [])]})
    check_report_out(args.out, "--out", ("report.md",))
    summary = report(args.folders, args.out, args.against)
    if args.against:
        for r in summary["ablations"]:
            print(f"{r['variant']}: {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} ({r['gap']:+.3f} vs base: {r['verdict']})")
        print(f"wrote {Path(args.out) / 'report.md'}")
        return 0
    for key, group in summary.items():
        print(f"{key.replace('|', ' / ')}: {len(group['learned'])} learned points, {len(group['baselines'])} baselines")
        for c in group["checks"]:
            print(f"  vs {c['baseline']}: {c['verdict']}")
    print(f"wrote {Path(args.out) / 'report.md'}")
    return 0
