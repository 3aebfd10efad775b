"""`hieramas sim validate`: how well the simulator imitates the real data.

    hieramas sim validate [--benchmark mmlu_redux] [--heldout 0.3] [--json [OUT]]

1. IRT check on held-out questions: the fit is redone on the other questions, the held-out
   ones are simulated (difficulty drawn from the fitted difficulties of the same domain, 20
   replicates) and compared with the real outcomes: per-model accuracy, and the mean absolute
   difference between the real and simulated pairwise error correlations.
2. Behaviour model (`$HIERAMAS_BEHAVIOUR` or the committed `data/sim/behaviour.json`) against
   the real debate logs:
   P(correct | k of 3 previous answers correct) for k = 0..3, P(C->W), P(W->C).
3. System level (`system`): the real debates re-run in the offline world (round 0 = the real
   answers, later rounds from the behaviour model with format failures and the team model's
   stubbornness, all fitted leave-one-setting-out): per setting (benchmark/team model) real vs
   simulated final agent accuracy, final majority vote and gain over the round-0 vote, also
   without the per-model stubbornness ("population", what the backends' models get); plus the
   5-model MMLU-Pro debate's per-agent transitions. `--no-system` skips it (it refits the
   behaviour model 14 times, ~70 s).

`--json OUT` writes the JSON report to OUT; `--json` alone prints it to stdout (and the text
report to stderr), e.g. `hieramas sim validate --json | jq .system.vote_mae`.

JSON: {"models": [{"model", "real_acc", "sim_acc"}], "corr_mae": ..., "behaviour": [{"name",
"real", "sim"}], "system": {"settings": [{"setting", "n_debates", "vote_round0", "real_vote",
"sim_vote", "real_gain", "sim_gain", "real_agent_acc", "sim_agent_acc", "stubbornness",
"population_sim_vote", "population_sim_gain", ...}], "vote_mae", "agent_acc_mae",
"gain_within_005", "population": {"vote_mae", "agent_acc_mae", "gain_within_005"},
"heldout_choice_nll", "heldout_format_nll", "n_settings", "heldout", "mmlu_pro_5agent": [...]}, ...}.
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from hieramas_gnn.backends.behaviour import load_behaviour
from hieramas_gnn.backends.fit import simfit
from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.guards import check_json_output, dumps


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("sim", help="check the simulator against the real data", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sim_command", metavar="{validate}", required=True)
    v = sub.add_parser("validate", help="simulated vs real accuracy, error correlation and behaviour figures")
    v.add_argument("--benchmark", default="mmlu_redux",
                   help="outcome set for the IRT check: mmlu_redux (default), mmlu, gsm8k, math_l5")
    v.add_argument("--heldout", type=float, default=0.3, help="fraction of questions held out (default 0.3)")
    v.add_argument("--no-system", dest="system", action="store_false",
                   help="skip the system-level debate re-run")
    v.add_argument("--json", dest="json_out", nargs="?", const="-", default=None, metavar="OUT",
                   help="also write the report as JSON to OUT; with no OUT, print the JSON to stdout "
                        "(the text report then goes to stderr)")
    v.set_defaults(func=handle_validate)


def print_report(r: dict) -> None:
    print(f"held-out questions ({r['benchmark']}): {r['n_heldout']}")
    width = max(len(m["model"]) for m in r["models"])
    print(f"{'model':<{width}}  {'real':>7}  {'sim':>7}  {'diff':>6}")
    for m in r["models"]:
        d = 100 * (m["sim_acc"] - m["real_acc"])
        print(f"{m['model']:<{width}}  {100 * m['real_acc']:6.2f}%  {100 * m['sim_acc']:6.2f}%  {d:+5.2f}")
    print(f"pairwise error correlation: MAE {r['corr_mae']:.4f} "
          f"(mean real {r['corr_real_mean']:.3f}, sim {r['corr_sim_mean']:.3f})")
    print(f"{'behaviour figure':<42}  {'real':>6}  {'sim':>6}  {'n':>5}")
    for b in r["behaviour"]:
        print(f"{b['name']:<42}  {b['real']:6.3f}  {b['sim']:6.3f}  {b['n']:>5}")
    if "system" in r:
        print_system(r["system"])


def print_system(s: dict) -> None:
    print(f"system level: real debates re-run ({s['heldout']}; {s['reps']} replicates)")
    print(f"{'setting':<38} {'n':>4}  {'vote r0':>7}  {'real':>6}  {'sim':>6}  {'gain real':>9}  {'gain sim':>8}")
    for x in s["settings"]:
        print(f"{x['setting']:<38} {x['n_debates']:>4}  {x['vote_round0']:7.3f}  {x['real_vote']:6.3f}  "
              f"{x['sim_vote']:6.3f}  {x['real_gain']:+9.3f}  {x['sim_gain']:+8.3f}")
    print(f"final vote MAE {s['vote_mae']:.4f}; final agent accuracy MAE {s['agent_acc_mae']:.4f}; "
          f"gain within 0.05 in {s['gain_within_005']} of {s['n_settings']} settings")
    if "population" in s:
        p = s["population"]
        print(f"  without the per-model stubbornness (what the backends' models get): final vote MAE "
              f"{p['vote_mae']:.4f}; agent accuracy MAE {p['agent_acc_mae']:.4f}; gain within 0.05 in "
              f"{p['gain_within_005']} of {s['n_settings']}")
    if s.get("mmlu_pro_5agent"):
        print(f"{'MMLU-Pro 5-agent debate':<42} {'acc r2 real/sim':>16}  {'C->W real/sim':>14}  {'W->C real/sim':>14}")
        for m in s["mmlu_pro_5agent"]:
            print(f"{m['model']:<42} {m['real_round2_acc']:7.3f}/{m['sim_round2_acc']:.3f}  "
                  f"{m['real_p_c_to_w']:6.3f}/{m['sim_p_c_to_w']:.3f}  {m['real_p_w_to_c']:6.3f}/{m['sim_p_w_to_c']:.3f}")


def handle_validate(args: argparse.Namespace) -> int:
    if not 0.05 <= args.heldout <= 0.9:
        raise UserError(f"--heldout must be between 0.05 and 0.9, got {args.heldout}")
    if args.json_out != "-":
        check_json_output(args.json_out, "--json", ("models", "n_heldout", "behaviour", "benchmark"),
                          "an earlier `hieramas sim validate` report")
    cfg = load_behaviour()  # $HIERAMAS_BEHAVIOUR, else data/sim/behaviour.json
    from hieramas_gnn.progress import phase

    phase(f"validating the simulator on {args.benchmark} ({args.heldout:.0%} of the questions held out"
          + ("; then the system-level re-run" if args.system else "") + ")")
    report = simfit.validate(shared_data_dir(), cfg, benchmark=args.benchmark, heldout_frac=args.heldout,
                      system=args.system)
    if args.json_out == "-":  # `--json` alone: the JSON is stdout, the text report goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            print_report(report)
        print(json.dumps(report, indent=2))
        return 0
    print_report(report)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(dumps(report, indent=2))
        print(f"wrote {args.json_out}")
    return 0
