"""Collaboration vs vote on replay with fair anchors: MMLU-Redux, GSM8K, MATH-L5.

    .venv/bin/python experiments/fair_anchor_replay.py [--test-limit N] [--rank-limit N] \
        [--out experiments/results/fair_anchor_replay]

Per benchmark, one replay pool (below) and the hash `partition` of the benchmark: the pool is
ranked by single accuracy on train + val questions (`rank_models`), the best model is the
anchor (MoA aggregator, fixed-topology synthesizer and decision model) and the debate agents are
the three best; every method runs on the test questions through the real client and the
`replay/` provider. For contrast, `moa@pool-first` and `chain@pool-first` use the pool's first
model as the anchor (the old default).

Then the direction of MoA - vote is explained with the validated behaviour model, exactly (no
sampling): each test question is classed by where the correct answer stands among the pool's
real answers (unique plurality / tied for most / a minority / nobody), and per class the
expected accuracy of the anchor reading all proposals (`choice_distribution`, the backends'
probabilities) is set next to the vote's. The same expectation under moved assumptions is the
sensitivity check: plurality_bonus 0.5 / 1 / 2, the anchor's own answer counted once (not as own
answer plus its own proposal), strength_slope x 0.5 / x 1.5.

Writes <out>.json and <out>.md (after each benchmark). Runtime with the defaults (200 test, 150
ranking questions per benchmark): ~3 CPU-minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hieramas_gnn.backends.behaviour import BehaviourConfig, choice_distribution, load_behaviour
from hieramas_gnn.eval.baselines import (BaselineConfig, Baselines, anchor_questions, expand_methods,
                                         rank_models, result_rows, run_baselines)
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import Pool, load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.base import partition

# benchmark -> (pool file, models in pool order; the first is deliberately not the best)
SETUPS: dict[str, tuple[str, list[str]]] = {
    "mmlu_redux": ("replay-mmlu-redux", [
        "mistralai_mistral-large-2407", "anthropic_claude-3-5-sonnet-20240620", "openai_gpt-4o-2024-05-13",
        "meta_llama-3.1-405b-instruct-turbo", "qwen_qwen2.5-72b-instruct-turbo"]),
    "gsm8k": ("replay-gsm8k", [
        "Qwen2-7B-Instruct", "gemma-2-9b-it", "Meta-Llama-3.1-8B-Instruct", "claude-3-haiku-20240307",
        "gemini-1.5-flash", "gpt-4o-mini-2024-07-18", "Meta-Llama-3.1-70B-Instruct"]),
    "math_l5": ("replay-math-l5", [
        "gemini-1.5-flash", "Meta-Llama-3.1-70B-Instruct", "Mistral-Large-2", "claude-3-5-sonnet-20240620",
        "gpt-4o-2024-08-06", "Qwen2.5-32B-Instruct", "Qwen2.5-72B-Instruct"]),
}
METHODS = ["single", "vote", "moa", "debate", "chain", "star", "complete", "layered"]
CLASSES = ("right answer the unique plurality", "right answer tied for most", "right answer a minority",
           "nobody right")


def sub_pool(name: str, models: list[str]) -> Pool:
    pool = load_pool(name)
    return replace(pool, name=f"{name}[{len(models)}]", models=tuple(pool.get(m) for m in models))


def classify(answers: list[str | None], right: list[bool]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    good = {a for a, r in zip(answers, right) if r and a is not None}
    if not good:
        return CLASSES[3]
    top = max(counts.values())
    c = max(counts[a] for a in good)
    if c < top:
        return CLASSES[2]
    return CLASSES[0] if sum(v == top for v in counts.values()) == 1 else CLASSES[1]


def expected_moa(rows: list[dict], strength: float, cfg: BehaviourConfig, own_once: bool = False) -> np.ndarray:
    """P(the anchor's MoA output is right) per question under the behaviour model. [Q]"""
    out = []
    for r in rows:
        right = dict(zip(r["answers"], r["right"]))
        own = None if own_once else r["anchor_answer"]
        dist = choice_distribution(own, r["answers"], lambda a: bool(right.get(a, False)), strength, cfg)
        out.append(sum(p for a, p in dist.items() if right.get(a, False)))
    return np.array(out)


def run_bench(bench: str, test_limit: int | None, rank_limit: int, cfg: BehaviourConfig) -> dict:
    pool_name, models = SETUPS[bench]
    task, pool = get_task(bench), sub_pool(pool_name, models)
    roleset = get_roleset(task.family)
    every = task.load()
    test = partition(every, "test")[:test_limit]
    client = LLMClient(pool, None, ClientConfig(max_concurrency=64, per_model_concurrency=64))
    t0 = time.perf_counter()
    ranked = asyncio.run(rank_models(task, roleset, pool.names, anchor_questions(task, test, rank_limit)[0], client))
    ranking = tuple(m for m, _ in ranked)
    fair = Baselines(task, roleset, pool.names, BaselineConfig(ranking=ranking))
    traces = asyncio.run(run_baselines(fair, expand_methods(METHODS, pool.names), test, client, 64))
    first = Baselines(task, roleset, pool.names, BaselineConfig(anchor=pool.names[0]))
    naive = asyncio.run(run_baselines(first, ["moa", "chain"], test, client, 64))
    rows = result_rows(traces) + [{**r, "method": f"{r['method']}@pool-first"} for r in result_rows(naive)]
    wall = time.perf_counter() - t0

    # Per question: the pool's real answers (the single traces) and the vote's / MoA's outcome.
    per_q = []
    for i, q in enumerate(test):
        answers = [traces[f"single:{m}"][i].answer for m in pool.names]
        right = [bool(traces[f"single:{m}"][i].correct) for m in pool.names]
        per_q.append({"answers": answers, "right": right, "anchor_answer": answers[pool.names.index(fair.anchor)],
                      "class": classify(answers, right), "vote": bool(traces["vote"][i].correct),
                      "moa": bool(traces["moa"][i].correct)})
    from hieramas_gnn.backends.replay import Replayer

    table = Replayer().table(bench)
    table.models()  # loads the table
    strength = table.accuracy[fair.anchor]  # the strength the replay backend gives the anchor
    exp = expected_moa(per_q, strength, cfg)
    classes = []
    for c in CLASSES:
        m = np.array([r["class"] == c for r in per_q])
        if m.any():
            classes.append({"class": c, "share": float(m.mean()), "n": int(m.sum()),
                            "vote": float(np.mean([r["vote"] for r, k in zip(per_q, m) if k])),
                            "moa_expected": float(exp[m].mean()),
                            "moa_run": float(np.mean([r["moa"] for r, k in zip(per_q, m) if k]))})
    variants = {"fitted model": exp}
    for pb in (0.5, 1.0, 2.0):
        variants[f"plurality_bonus {pb}"] = expected_moa(per_q, strength, replace(cfg, plurality_bonus=pb))
    variants["own answer counted once"] = expected_moa(per_q, strength, cfg, own_once=True)
    for k in (0.5, 1.5):
        variants[f"strength_slope x{k}"] = expected_moa(per_q, strength, replace(cfg, strength_slope=cfg.strength_slope * k))
    vote = float(np.mean([r["vote"] for r in per_q]))
    n_distinct = float(np.mean([len({a for a in r["answers"] if a is not None}) for r in per_q]))
    return {"benchmark": bench, "pool": pool.names, "n_test": len(test), "n_rank": rank_limit,
            "ranking": [{"model": m, "train_val_accuracy": a} for m, a in ranked], "anchor": fair.anchor,
            "anchor_strength": strength, "pool_first": pool.names[0], "results": rows, "wall_s": round(wall, 1),
            "mean_distinct_answers": n_distinct, "classes": classes,
            "sensitivity": [{"variant": k, "moa_expected": float(v.mean()), "moa_minus_vote": float(v.mean()) - vote}
                            for k, v in variants.items()]}


def markdown(report: dict) -> str:
    lines = ["# Collaboration vs vote on replay, fair anchors", "",
             f"Command: `{report['command']}`. Behaviour model: `data/sim/behaviour.json`. "
             "Test questions: the hash `partition` test share of each benchmark (subset sizes below); "
             "the anchor is the best model by single accuracy on train + val questions.", ""]
    for b in report["benchmarks"]:
        acc = {r["method"]: r["accuracy"] for r in b["results"]}
        singles = {k.split(":", 1)[1]: v for k, v in acc.items() if k.startswith("single:")}
        best = max(singles, key=singles.get)
        lines += [f"## {b['benchmark']} (n = {b['n_test']}; anchor {b['anchor']}, strength "
                  f"{b['anchor_strength']:.3f}; pool's first {b['pool_first']}; "
                  f"{b['mean_distinct_answers']:.2f} distinct answers per question)", "",
                  "| method | accuracy | $/query |", "|---|---|---|"]
        lines += [f"| best single ({best}) | {singles[best]:.3f} | |"]
        lines += [f"| {r['method']} | {r['accuracy']:.3f} | {r['cost_usd']:.5f} |" for r in b["results"]
                  if not r["method"].startswith("single:")]
        lines += ["", "| where the right answer stands | share | vote | MoA expected (model) | MoA run |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c['class']} | {c['share']:.3f} | {c['vote']:.3f} | {c['moa_expected']:.3f} | {c['moa_run']:.3f} |"
                  for c in b["classes"]]
        lines += ["", "| sensitivity (expected MoA) | MoA | MoA - vote |", "|---|---|---|"]
        lines += [f"| {s['variant']} | {s['moa_expected']:.3f} | {s['moa_minus_vote']:+.3f} |" for s in b["sensitivity"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test-limit", type=int, default=200, help="test questions per benchmark (default 200)")
    ap.add_argument("--rank-limit", type=int, default=150, help="train+val questions to rank the pool on")
    ap.add_argument("--benchmarks", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--out", default="experiments/results/fair_anchor_replay")
    args = ap.parse_args(argv)
    ensure_offline_defaults()
    cfg = load_behaviour()
    report = {"command": "experiments/fair_anchor_replay.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items()),
        "behaviour": cfg.to_dict(), "benchmarks": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for bench in args.benchmarks:  # written after each benchmark, so a cut-short run keeps its results
        report["benchmarks"].append(run_bench(bench, args.test_limit, args.rank_limit, cfg))
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
