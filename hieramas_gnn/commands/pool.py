"""`hieramas pool add`: give a trained policy bundle models it never saw, without retraining.

    hieramas pool add --bundle runs/x/policy --pool my-pool.yaml --out runs/x/policy-plus \\
        --calibration-questions 50 --budget 0.50

`--pool` is your pool YAML: the new models (any name the bundle does not know) with your model
strings, bases and key variables; it may also list the bundle's models (same model strings). Each
new model answers the calibration questions (default 50, drawn with `--seed` from the bundle's
training split) through the rollout cache under the spend cap `--budget` (a finite number of USD;
a killed run re-run pays nothing twice). Then a new bundle is written to `--out` (a new or empty
folder; the old bundle is only read and stays byte-identical): the same weights, the new models'
feature rows with their calibration accuracy as ability hints, every model's price features
recomputed over the new pool. Before writing, each new model is checked: the bundle's designs on the
calibration questions with it and without it, scored with the bundle's training reward; a model
that lowers it is held back (reported, not in the new bundle; `--no-check` skips this). The
command prints what was recomputed and why
(`hieramas_gnn/pool_add.py`); the new bundle records it in `extra.pool_add`. Exit code 3: the
budget stopped the calibration (completed calls are cached; raise `--budget` and re-run).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hieramas_gnn.bundle_trust import add_trust_args
from hieramas_gnn.commands.common import BUDGET_EXIT, add_backend_args, backend_settings, check_positive


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("pool", help="change a trained bundle's pool: add models without retraining",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="pool_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="measure new models on a few training questions and write a new bundle "
                                     "whose policy can choose them",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("--bundle", required=True, help="the trained policy bundle (read only)")
    add.add_argument("--pool", required=True, help="your pool YAML: the new models (and optionally the bundle's)")
    add.add_argument("--out", required=True, help="folder of the new bundle (new or empty)")
    add.add_argument("--calibration-questions", type=int, default=50, metavar="N",
                     help="questions of the bundle's training split each new model answers (default 50)")
    add.add_argument("--seed", type=int, default=0, help="seed of the calibration questions' draw (default 0)")
    add.add_argument("--budget", type=float, default=1.0, metavar="USD",
                     help="spend cap of the calibration calls in USD, finite (default 1.0; cache hits are free)")
    add.add_argument("--decision", default=None, metavar="MODEL",
                     help="decision model of the new bundle (default: the bundle's)")
    add.add_argument("--cache", default="runs/rollouts.sqlite", help="rollout cache (SQLite)")
    add.add_argument("--cache-mode", choices=("rw", "replay", "off"), default="rw",
                     help="rw (default), replay (a miss raises) or off")
    add.add_argument("--embed-cache", default=None, help="folder of the embedding cache")
    add.add_argument("--max-in-flight", type=int, default=8, help="calls in flight at once (default 8)")
    add.add_argument("--no-check", dest="check", action="store_false",
                     help="add every new model without checking that the bundle's designs with it score no lower "
                          "training reward on the calibration questions (default: check; a model that lowers it "
                          "is held back)")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add_backend_args(add)
    add_trust_args(add)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hieramas_gnn.bundle import bundle_digest, check_digest, read_meta
    from hieramas_gnn.bundle_trust import recorded_backend
    from hieramas_gnn.pool_add import RECOMPUTED, BudgetStop, add_models, check_budget
    from hieramas_gnn.progress import phase

    check_budget(args.budget)
    check_positive(args.max_in_flight, "--max-in-flight")
    check_digest(args.bundle, args.sha256)
    meta = read_meta(args.bundle)
    try:
        res = add_models(args.bundle, args.pool, args.out, calibration_questions_n=args.calibration_questions,
                         seed=args.seed, budget_usd=args.budget, cache_path=args.cache, cache_mode=args.cache_mode,
                         decision=args.decision, embed_cache=args.embed_cache,
                         backend=backend_settings(args, recorded_backend(meta)), max_in_flight=args.max_in_flight,
                         trust=args.trust_bundle_endpoints, check=args.check, say=phase)
    except BudgetStop as exc:
        print(f"hieramas: error: {exc}", file=sys.stderr)
        return BUDGET_EXIT
    if args.json:
        print(json.dumps({"bundle": str(res.bundle), "sha256": bundle_digest(res.bundle), "added": res.added,
                          "calibration": [c.__dict__ for c in res.calibration], "paid_usd": res.paid_usd,
                          "calibration_usd": res.calibration_usd, "decision": res.decision,
                          "held_back": res.held_back, "checks": [c.__dict__ for c in res.checks],
                          "recomputed": RECOMPUTED, "notes": res.notes}, indent=2))
        return 0
    print(f"added {len(res.added)} model(s) to the policy of {args.bundle} (weights unchanged, no training):")
    for c in res.calibration:
        print(f"  {c.model}: {c.correct}/{c.questions} calibration questions right ({c.accuracy:.3f}), "
              f"${c.cost_usd:.4f}")
    for c in res.checks:
        print(f"  check {c.model}: mean reward on the calibration questions "
              f"{', '.join(f'{w:.4f}' for w in c.reward_with)} with it, {', '.join(f'{o:.4f}' for o in c.reward_without)} "
              f"without (chosen for {c.used:.0%}): {'kept' if c.kept else 'HELD BACK (not in the new bundle)'}")
    print(f"calibration: ${res.calibration_usd:.4f} ({res.paid_usd:.4f} paid now, {res.cached_calls} calls cached); "
          f"decision model {res.decision}")
    print("recomputed / kept:")
    for key, why in RECOMPUTED.items():
        print(f"  {key}: {why}")
    for note in res.notes:
        print(f"note: {note}")
    print(f"new policy bundle written to {res.bundle} (sha256 {bundle_digest(res.bundle)}); the old one is unchanged")
    return 0
