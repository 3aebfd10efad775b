"""Pair two experiment folders' learned policies over the same held-out questions, overall and per
domain: e.g. the demo against its query-blind ablation (`policy.query_features: false`), or any
two configs' `hieramas demo --out` folders. Each folder's `per_query.json` holds the per-question
correct / cost vectors (mean over seeds and runs); both must hold the same questions. Methods of
the first folder (`--also`, e.g. `cluster-lookup searched-design`) are paired too.

    python -m experiments.pair_runs runs/demo runs/demo_query_blind [--name query-blind] \
        [--also cluster-lookup searched-design] [--out experiments/results/pair_runs]
    # prints a markdown table; with --out also <out>/<name>.{json,md}

Paired gaps come from `eval/stats.paired_gap` (two standard errors: a tie inside the band); the
domain of each question is read from the first folder's own config (its held-out split).
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


def pair(a: dict[str, list[float]], b: dict[str, list[float]], idx: np.ndarray) -> dict[str, Any]:
    from hieramas_gnn import stats

    g = stats.paired_gap(np.asarray(a["correct"])[idx], np.asarray(b["correct"])[idx])
    out = {"n": int(len(idx)), "accuracy": float(np.mean(np.asarray(a["correct"])[idx])),
           "cost_usd": float(np.mean(np.asarray(a["cost"])[idx])),
           "other_accuracy": float(np.mean(np.asarray(b["correct"])[idx])),
           "other_cost_usd": float(np.mean(np.asarray(b["cost"])[idx])), **g.to_dict(), "band": round(g.band, 4)}
    if "reward" in a and "reward" in b:  # the run's cost-aware reward, paired the same way
        r = stats.paired_gap(np.asarray(a["reward"])[idx], np.asarray(b["reward"])[idx])
        out["reward_gap"], out["reward_band"] = round(r.gap, 4), round(r.band, 4)
    return out


def compare(first: str | Path, second: str | Path, name: str, also: list[str]) -> tuple[dict[str, Any], str]:
    """The pairs of `first`'s `hieramas` (and `also` methods) against `second`'s `hieramas`."""
    res_a, pq_a = load(first)
    _, pq_b = load(second)
    ids = pq_a["question_ids"]
    if pq_b["question_ids"] != ids:
        raise SystemExit(f"{first} and {second} hold different held-out questions: nothing to pair")
    doms = np.array(domains(res_a, first, ids))
    groups = [("all", np.arange(len(ids)))] + [(d, np.flatnonzero(doms == d)) for d in sorted(set(doms)) if d]
    other = pq_b["methods"]["hieramas"]
    rows = []
    for method in ["hieramas", *[m for m in also if m in pq_a["methods"]]]:
        for group, idx in groups:
            rows.append({"method": method, "domain": group, **pair(pq_a["methods"][method], other, idx)})
    lines = [f"| method | domain | n | accuracy @ $/query | {name} | accuracy gap ± 2 SE | p | reward gap ± 2 SE |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = "–" if r["p_value"] is None else f"{r['p_value']:.3f}"
        rg = f"{r['reward_gap']:+.3f} ± {r['reward_band']:.3f}" if "reward_gap" in r else "–"
        lines.append(f"| {r['method']} | {r['domain']} | {r['n']} | {r['accuracy']:.3f} @ ${r['cost_usd']:.1e} | "
                     f"{r['other_accuracy']:.3f} @ ${r['other_cost_usd']:.1e} | {r['gap']:+.3f} ± {r['band']:.3f} | "
                     f"{p} | {rg} |")
    data = {"first": str(first), "second": str(second), "second_name": name, "rows": rows}
    return data, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="experiment folder whose learned policy (and --also methods) is paired")
    p.add_argument("second", help="experiment folder whose learned policy is the comparator")
    p.add_argument("--name", default="other", help="what to call the second folder's policy (default: other)")
    p.add_argument("--also", nargs="*", default=["cluster-lookup", "searched-design"],
                   help="methods of the first folder paired too (default: cluster-lookup searched-design)")
    p.add_argument("--out", default=None, help="write <out>/<name>.json and .md")
    args = p.parse_args(argv)
    data, markdown = compare(args.first, args.second, args.name, args.also)
    print(markdown)
    if args.out:
        from experiments.common import write_results

        write_results(args.out, args.name, data, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
