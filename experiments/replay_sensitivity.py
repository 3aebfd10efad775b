"""Replay's wrong-answer assumption, checked on an experiment folder: its learned policies (every
seed's bundle) and its lookups (`cluster-lookup`, `searched-design`) re-run on the same held-out
questions under the other `backend.replay.wrong_answers` assumption than the one it ran with:
`shared` (every wrong answer to a question is the same label, the worst case for votes) or
`distinct` (the default: two wrong models never agree on an open answer, so a lone right answer
can win a plurality vote). A design
that is good only under `distinct` must not decide a headline (`docs/MIXED_TASKS.md`).

Single models are unaffected by the assumption (a single answer is right or wrong as recorded):
the folder's single-model rows (`best_per_task`, `best_single`, `single:*`) are paired as they
are in its `per_query.json`.

    python -m experiments.replay_sensitivity runs/mixed/routerdc \\
        --against best_per_task best_single --out experiments/results/mixed/routerdc
    # -> <out>/sensitivity_shared.{json,md}

Accuracy of a mixed task is the mean over its components (`accuracy_task_mean`); the paired gaps
weigh each question by n / (K · n_component) as `hieramas report` does (`eval/frontier.py`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def task_mean(correct: np.ndarray, comps: np.ndarray) -> tuple[float, dict[str, float]]:
    """(mean over components of each component's accuracy, accuracy per component)."""
    by = {c: float(np.mean(correct[comps == c])) for c in sorted(set(comps.tolist()))}
    return float(np.mean(list(by.values()))), by


def main(argv: list[str] | None = None) -> int:
    from experiments.common import folder_runner, write_results
    from hieramas_gnn import stats
    from hieramas_gnn.eval.experiment import evaluate_bundle, evaluate_lookups, seed_config
    from hieramas_gnn.eval.frontier import task_mean_weights
    from hieramas_gnn.paths import REPO_ROOT, ensure_offline_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="an experiment folder (`hieramas experiment --out`)")
    p.add_argument("--wrong-answers", default="shared", choices=("shared", "distinct"))
    p.add_argument("--against", nargs="*", default=["best_per_task", "best_single"],
                   help="single-model rows of the folder to pair against (unaffected by the assumption)")
    p.add_argument("--out", default=None, help="write <out>/sensitivity_<wrong-answers>.{json,md}")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    folder = Path(args.folder)
    res = json.loads((folder / "results.json").read_text())
    before = json.loads((folder / "per_query.json").read_text())
    config = Path(res["config"])
    config = config if config.is_absolute() else REPO_ROOT / config
    extra = [f"backend.replay.wrong_answers={args.wrong_answers}", "tracking.wandb=disabled"]
    overrides = [*res.get("overrides", []), *extra]
    was_set = seed_config(config, folder, 0, res.get("overrides", [])).backend.replay.wrong_answers
    if was_set == args.wrong_answers:
        raise SystemExit(f"{folder} already ran with wrong_answers={was_set}: choose the other assumption")
    run = folder_runner(folder, extra)
    pool, runner, test = run.pool, run.runner, run.test
    comps = np.array([str(q.meta.get("component") or q.meta.get("domain") or "") for q in test])
    w = task_mean_weights(comps)
    after: dict[str, list[np.ndarray]] = {}
    for seed in range(int(res["seeds"])):
        run_dir = folder / "runs" / f"seed{seed}"
        cfg = seed_config(config, folder, seed, overrides)
        _, pq, _ = evaluate_bundle(run_dir / "policy", test, runner, 1, pool=pool, embed_cache=cfg.policy.embed_cache,
                                   control=False)
        _, lq = evaluate_lookups(run_dir, run_dir / "policy", test, runner, 1, embed_cache=cfg.policy.embed_cache)
        for m, v in {**pq, **lq}.items():
            after.setdefault(m, []).append(np.asarray(v["correct"], dtype=float))
    rows = []
    for m, vs in after.items():
        now = np.mean(vs, axis=0)
        was = np.asarray(before["methods"][m]["correct"], dtype=float)
        tm_now, by_now = task_mean(now, comps)
        row = {"method": m, was_set: round(task_mean(was, comps)[0], 4), args.wrong_answers: round(tm_now, 4),
               "by_component": {c: round(v, 4) for c, v in by_now.items()}, "pairs": {}}
        for other in args.against:
            if other in before["methods"]:
                g = stats.paired_gap(now * w, np.asarray(before["methods"][other]["correct"], dtype=float) * w)
                row["pairs"][other] = {"gap": round(g.gap, 4), "band": round(g.band, 4),
                                       "task_mean": round(task_mean(np.asarray(before["methods"][other]["correct"]), comps)[0], 4)}
        rows.append(row)
    data = {"folder": str(folder), "ran_with": was_set, "wrong_answers": args.wrong_answers, "n": len(test), "seeds": res["seeds"], "rows": rows}
    comp_names = sorted(set(comps.tolist()))
    lines = [f"# Replay sensitivity: {res['task']}, wrong answers `{args.wrong_answers}` (re-run) vs `{was_set}` (as trained)", "",
             f"Command: `python -m experiments.replay_sensitivity {folder} --wrong-answers {args.wrong_answers}` "
             f"({len(test)} held-out questions, {res['seeds']} seeds' bundles; accuracy = mean over components).", "",
             f"| method | {was_set} (as run) | {args.wrong_answers} (re-run) | " + " | ".join(comp_names) + " | "
             + " | ".join(f"gap vs {o} ± 2 SE" for o in args.against) + " |",
             "|---|---:|---:|" + "---:|" * len(comp_names) + "---:|" * len(args.against)]
    for r in rows:
        pairs = [f"{r['pairs'][o]['gap']:+.3f} ± {r['pairs'][o]['band']:.3f} ({o} {r['pairs'][o]['task_mean']:.3f})"
                 if o in r["pairs"] else "–" for o in args.against]
        lines.append(f"| {r['method']} | {r[was_set]:.3f} | {r[args.wrong_answers]:.3f} | "
                     + " | ".join(f"{r['by_component'][c]:.3f}" for c in comp_names) + " | " + " | ".join(pairs) + " |")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.out:
        write_results(args.out, f"sensitivity_{args.wrong_answers}", data, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
