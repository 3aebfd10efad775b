"""Pair two experiment folders' learned policies over the same held-out questions, overall and per
domain: e.g. the demo against its query-blind ablation (`policy.query_features: false`), or any
two configs' `hieramas demo --out` folders. Each folder's `per_query.json` holds the per-question
correct / cost vectors (mean over seeds and runs); both must hold the same questions. Methods of
the first folder (`--also`, e.g. `cluster-lookup searched-design`) are paired too.

    python -m experiments.pair_runs runs/demo runs/demo_query_blind [--name query-blind] \
        [--also cluster-lookup searched-design] [--weights task-mean] [--out experiments/results/pair_runs]
    # prints a markdown table; with --out also <out>/<name>.{json,md}
    # other test questions: each seed's bundle (and the --also lookups) of both folders run again on
    # the test split of the folders' configs with --set overrides, e.g. out of distribution:
    python -m experiments.pair_runs runs/mixed/routerdc runs/mixed/routerdc_query_blind --name query-blind \
        --weights task-mean --set task.name=routerdc_ood task.test_size=1371

Paired gaps come from `eval/stats.paired_gap` (two standard errors: a tie inside the band); the
domain of each question is read from the first folder's own config (its held-out split).
`--weights task-mean` weighs the questions of the `all` row so that its accuracy and gaps are those
of the mean over components (`stats.task_mean_weights`, as `accuracy_task_mean`); within one
domain every weight is the same. With `--set`, the re-run per-question vectors (mean over seeds,
one run per question, through the configs' rollout cache or `cache.path=` given) are kept in
`<folder>/per_query_rerun.json` and read from there when a later call asks for the same overrides.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def load(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results.json, per_query.json) of an experiment folder."""
    folder = Path(folder)
    return json.loads((folder / "results.json").read_text()), json.loads((folder / "per_query.json").read_text())


def domains(results: dict[str, Any], folder: str | Path, ids: list[str]) -> list[str]:
    """The `meta["domain"]` of each question id, from the folder's config and overrides."""
    from hieramas_gnn.eval.experiment import seed_config
    from hieramas_gnn.paths import REPO_ROOT
    from hieramas_gnn.build import load_questions

    config = Path(results["config"])
    cfg = seed_config(config if config.is_absolute() else REPO_ROOT / config, folder, 0, results.get("overrides", []))
    _, _, test, _ = load_questions(cfg)
    by_id = {q.id: str(q.meta.get("domain") or "") for q in test}
    return [by_id.get(i, "") for i in ids]


def pair(a: dict[str, list[float]], b: dict[str, list[float]], idx: np.ndarray,
         weights: np.ndarray | None = None) -> dict[str, Any]:
    """The paired gap a - b over the questions `idx`; `weights` (per question, all of them; None:
    1) weigh accuracy and reward, normalised to mean 1 over `idx` (cost stays the plain mean)."""
    from hieramas_gnn import stats

    w = np.ones(len(idx)) if weights is None else np.asarray(weights, dtype=float)[idx] / np.mean(
        np.asarray(weights, dtype=float)[idx])
    ca, cb = np.asarray(a["correct"], dtype=float)[idx] * w, np.asarray(b["correct"], dtype=float)[idx] * w
    g = stats.paired_gap(ca, cb)
    out = {"n": int(len(idx)), "accuracy": float(np.mean(ca)), "cost_usd": float(np.mean(np.asarray(a["cost"])[idx])),
           "other_accuracy": float(np.mean(cb)), "other_cost_usd": float(np.mean(np.asarray(b["cost"])[idx])),
           **g.to_dict(), "band": round(g.band, 4)}
    if "reward" in a and "reward" in b:  # the run's cost-aware reward, paired the same way
        r = stats.paired_gap(np.asarray(a["reward"], dtype=float)[idx] * w, np.asarray(b["reward"], dtype=float)[idx] * w)
        out["reward_gap"], out["reward_band"] = round(r.gap, 4), round(r.band, 4)
    return out


RERUN_FILE = "per_query_rerun.json"


def rerun(folder: str | Path, overrides: list[str], also: list[str]) -> dict[str, Any]:
    """A `per_query.json`-like dict (question_ids, components, domains, methods) of the folder's
    bundles run again on the test questions of its config with `overrides`: `hieramas` per seed
    (mean over seeds, one run per question), and the `also` lookups of each seed's run folder.
    Kept in `<folder>/per_query_rerun.json` (read back when the overrides are the same)."""
    from hieramas_gnn.eval.experiment import EvaluationSetup, evaluate_bundle, evaluate_lookups, seed_config
    from hieramas_gnn.paths import REPO_ROOT, ensure_offline_defaults
    from hieramas_gnn.train.rewards import reward_function

    folder = Path(folder)
    kept = folder / RERUN_FILE
    if kept.exists():
        saved = json.loads(kept.read_text())
        if saved.get("overrides") == list(overrides) and set(also) <= set(saved["methods"]) | set(saved["missing"]):
            return saved
    ensure_offline_defaults()
    results = json.loads((folder / "results.json").read_text())
    config = Path(results["config"])
    config = config if config.is_absolute() else REPO_ROOT / config
    every = [*results.get("overrides", []), *overrides]
    setup = EvaluationSetup.from_config(seed_config(config, folder, 0, every))
    pool, test, runner = setup.pool, setup.test, setup.runner
    sums: dict[str, dict[str, np.ndarray]] = {}
    missing: set[str] = set()
    seeds = int(results["seeds"])
    for seed in range(seeds):
        cfg = seed_config(config, folder, seed, every)
        reward = reward_function(cfg.reward).of_trace
        bundle = Path(cfg.run.dir) / "policy"
        _, vecs, _ = evaluate_bundle(bundle, test, runner, 1, reward, pool=pool,
                                     embed_cache=cfg.policy.embed_cache, control=False)
        if also:
            _, looked = evaluate_lookups(cfg.run.dir, bundle, test, runner, 1, reward, embed_cache=cfg.policy.embed_cache)
            vecs.update({m: v for m, v in looked.items() if m in also})
            missing |= {m for m in also if m not in looked}
        for method, v in vecs.items():
            acc = sums.setdefault(method, {k: np.zeros(len(test)) for k in v})
            for k, x in v.items():
                acc[k] = acc[k] + np.asarray(x, dtype=float) / seeds
    data = {"overrides": list(overrides), "seeds": seeds, "question_ids": [q.id for q in test],
            "components": [str(q.meta.get("component") or q.task) for q in test],
            "domains": [str(q.meta.get("domain") or "") for q in test], "missing": sorted(missing),
            "methods": {m: {k: x.tolist() for k, x in v.items()} for m, v in sums.items()}}
    if not kept.exists() or "overrides" in json.loads(kept.read_text()):  # never replace a file made elsewhere
        kept.write_text(json.dumps(data) + "\n")
    return data


WEIGHTS = ("question", "task-mean")


def compare(first: str | Path, second: str | Path, name: str, also: list[str], *, weights: str = "question",
            overrides: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """The pairs of `first`'s `hieramas` (and `also` methods) against `second`'s `hieramas`:
    over the folders' own held-out questions, or (`overrides`) over the test questions of their
    configs with these overrides, each seed's bundle run again (`rerun`)."""
    if weights not in WEIGHTS:
        raise SystemExit(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if overrides:
        pq_a, pq_b = rerun(first, overrides, also), rerun(second, overrides, [])
        doms = np.array(pq_a["domains"])
    else:
        res_a, pq_a = load(first)
        _, pq_b = load(second)
    ids = pq_a["question_ids"]
    if pq_b["question_ids"] != ids:
        raise SystemExit(f"{first} and {second} hold different held-out questions: nothing to pair")
    if not overrides:
        doms = np.array(domains(res_a, first, ids))
    w = None
    if weights == "task-mean":
        from hieramas_gnn import stats

        if "components" not in pq_a:
            raise SystemExit(f"{first}: its per-question results name no components: --weights task-mean needs a "
                             "mixed task")
        w = stats.task_mean_weights([str(c) for c in pq_a["components"]])
    groups = [("all", np.arange(len(ids)))] + [(d, np.flatnonzero(doms == d)) for d in sorted(set(doms)) if d]
    other = pq_b["methods"]["hieramas"]
    rows = []
    for method in ["hieramas", *[m for m in also if m in pq_a["methods"]]]:
        for group, idx in groups:
            rows.append({"method": method, "domain": group, **pair(pq_a["methods"][method], other, idx, w)})
    lines = [f"| method | domain | n | accuracy @ $/query | {name} | accuracy gap ± 2 SE | p | reward gap ± 2 SE |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = "–" if r["p_value"] is None else f"{r['p_value']:.3f}"
        rg = f"{r['reward_gap']:+.3f} ± {r['reward_band']:.3f}" if "reward_gap" in r else "–"
        lines.append(f"| {r['method']} | {r['domain']} | {r['n']} | {r['accuracy']:.3f} @ ${r['cost_usd']:.1e} | "
                     f"{r['other_accuracy']:.3f} @ ${r['other_cost_usd']:.1e} | {r['gap']:+.3f} ± {r['band']:.3f} | "
                     f"{p} | {rg} |")
    data = {"first": str(first), "second": str(second), "second_name": name, "weights": weights,
            "overrides": list(overrides or []), "rows": rows}
    return data, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="experiment folder whose learned policy (and --also methods) is paired")
    p.add_argument("second", help="experiment folder whose learned policy is the comparator")
    p.add_argument("--name", default="other", help="what to call the second folder's policy (default: other)")
    p.add_argument("--also", nargs="*", default=["cluster-lookup", "searched-design"],
                   help="methods of the first folder paired too (default: cluster-lookup searched-design)")
    p.add_argument("--weights", choices=WEIGHTS, default="question",
                   help="question: every question alike; task-mean: the `all` row judges the mean over components")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="run each seed's bundle of both folders again on the test questions of their configs with "
                        "these overrides (e.g. task.name=routerdc_ood task.test_size=1371)")
    p.add_argument("--out", default=None, help="write <out>/<name>.json and .md")
    args = p.parse_args(argv)
    data, markdown = compare(args.first, args.second, args.name, args.also, weights=args.weights,
                             overrides=args.overrides)
    print(markdown)
    if args.out:
        from experiments.common import write_results

        write_results(args.out, args.name, data, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
