"""Which behaviour-model structure composes right: the variants and sensitivity checks of the
system-level check (docs/BACKENDS.md, "System level").

    python -m experiments.system_variants [--reps 200] [--seeds 0] [--only NAME ...]

Every variant runs the full leave-one-setting-out re-run of `hieramas sim validate`'s `system`
section (`system_fit.system_validation` with `SystemOptions`) and records the held-out
per-step likelihood (the criterion the structure was chosen by: mean negative log-likelihood of
"the new answer is correct" over the held-out settings' parsed replies), the final-vote MAE,
the final agent-accuracy MAE and the number of settings whose simulated gain is within 0.05 of
the real one, with and without the per-model stubbornness. Writes
experiments/results/system_variants.{json,md}. About 1 min per variant and seed on a free core.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from hieramas_gnn.backends.behaviour import load_behaviour
from hieramas_gnn.backends.fit.system_fit import SystemOptions, system_validation
from hieramas_gnn.paths import ensure_offline_defaults, shared_data_dir

OUT = Path(__file__).parent / "results"

VARIANTS: dict[str, tuple[str, SystemOptions]] = {
    "all-replies fit": ("choice fitted on every reply (unparseable = wrong choice), strength over all "
                        "answers, fitted format model", SystemOptions(parsed_only=False, parsed_strength=False,
                                                                      model_effects=False)),
    "parsed-replies fit": ("choice fitted on parsed replies, strength over all answers",
                           SystemOptions(parsed_strength=False, model_effects=False)),
    "+ parsed strength": ("... and strength = accuracy over parsed round-0 answers (the population "
                          "model: what the backends use)", SystemOptions(model_effects=False)),
    "+ stubbornness": ("... and the per-model stubbornness from the model's other settings (the model)",
                       SystemOptions()),
    "stubbornness, all-answers strength": ("parsed-replies fit + stubbornness, strength over all answers",
                                           SystemOptions(parsed_strength=False)),
    "all-replies fit + stubbornness": ("the all-replies fit (format failures counted twice in the re-run) "
                                       "with the per-model stubbornness",
                                       SystemOptions(parsed_only=False, parsed_strength=False)),
    "likelihood only": ("the model fitted without the per-step figure term (figure_weight 0)",
                        SystemOptions(figure_weight=0.0)),
    # sensitivity of the model to its assumptions
    "tau x 0.5": ("the model, stubbornness prior spread halved", SystemOptions(tau_scale=0.5)),
    "tau x 2": ("the model, stubbornness prior spread doubled", SystemOptions(tau_scale=2.0)),
    "min_rows 15": ("the model, settings with >= 15 informative rows enter tau", SystemOptions(min_rows=15)),
    "min_rows 60": ("the model, settings with >= 60 informative rows enter tau", SystemOptions(min_rows=60)),
    "format neutral": ("the model, format failures at the round-0 rate whatever the previous answer",
                       SystemOptions(format_failures="neutral")),
    "format none": ("the model, every reply parsed", SystemOptions(format_failures="none")),
}


def run(names: list[str], reps: int, seeds: list[int]) -> list[dict]:
    log = shared_data_dir() / "aggregation" / "debate_turns.csv.gz"
    base = load_behaviour()
    out = []
    for name in names:
        what, opts = VARIANTS[name]
        for seed in seeds:
            r = system_validation(log, base, reps=reps, seed=seed, options=opts)
            row = {"variant": name, "what": what, "options": asdict(opts), "seed": seed,
                   "heldout_choice_nll": r["heldout_choice_nll"], "heldout_format_nll": r["heldout_format_nll"],
                   "vote_mae": r["vote_mae"], "agent_acc_mae": r["agent_acc_mae"],
                   "gain_within_005": r["gain_within_005"], "population": r["population"],
                   "settings": r["settings"]}
            out.append(row)
            print(f"{name:<36} seed {seed}: NLL {row['heldout_choice_nll']:.4f}  vote MAE {row['vote_mae']:.4f}  "
                  f"within {row['gain_within_005']}/14  (population: {r['population']['vote_mae']:.4f}, "
                  f"{r['population']['gain_within_005']}/14)", flush=True)
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| variant | seed | held-out choice NLL | final-vote MAE | agent-acc MAE | gain within 0.05 | "
             "population: vote MAE / within |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["population"]
        lines.append(f"| {r['variant']} | {r['seed']} | {r['heldout_choice_nll']:.4f} | {r['vote_mae']:.4f} | "
                     f"{r['agent_acc_mae']:.4f} | {r['gain_within_005']}/14 | {p['vote_mae']:.4f} / "
                     f"{p['gain_within_005']}/14 |")
    lines += ["", "Variants:", ""] + [f"* **{k}**: {w}" for k, (w, _) in VARIANTS.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ensure_offline_defaults()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=None)
    ap.add_argument("--out", type=Path, default=OUT / "system_variants")
    args = ap.parse_args()
    rows = run(args.only or list(VARIANTS), args.reps, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows))
    print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
