"""`hieramas demo [--out DIR] [--seeds N] [--quick]`: the whole product on the embedded default.

For each seed: stage 1 (mixture selector, REINFORCE over random DAGs) and stage 2 (topology as
graph classification) on the project's synthetic tasks with the offline `sim` pool, then the
learned policy (method `hieramas`) is evaluated on held-out queries next to the baselines of
`hieramas baselines` and a random DAG drawn from the same candidate pool. Writes `report.md`,
`pareto.png`, `topology.png`, `results.json` (the `hieramas baselines` JSON format, mean ± std
over seeds) and the exported policy (`policy/`) to `--out`. Nothing leaves the machine: every
LLM call is simulated and cached in `--out/cache/rollouts.sqlite`.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

DEFAULT_POOL = "sim"
DEFAULT_BASELINES = ("single", "moa", "random", "chain", "complete", "vote")
QUICK_BASELINES = ("single", "moa", "random")


def settings(out: Path, seed: int, quick: bool, pool: str, wandb: str) -> dict[str, Any]:
    """The demo's run config (a `config.Config` dict); `quick` shrinks every size for tests."""
    # 512 held-out queries: with 128, one query is 0.008 accuracy and the methods' gaps were noise
    # 512 training queries: stage 1 samples its batches from them, and stage 2 runs 8 candidate DAGs
    # on each of the 512 + 32 (only ~15% are hard enough for the topology to change their answer;
    # with 128 + 32 the classifier saw 20-30 informative queries and tied with a random DAG)
    sizes = dict(train_size=16, val_size=8, test_size=16) if quick else dict(train_size=512, val_size=32, test_size=512)
    return {
        "run": {"name": "demo", "seed": seed, "out_dir": str(out / "runs" / f"seed{seed}")},
        "task": {"name": "synthetic", **sizes},
        "pool": {"name": pool},
        "cache": {"path": str(out / "cache" / "rollouts.sqlite"), "mode": "rw"},
        # simulated latencies would be really awaited; the demo measures accuracy and cost, not waiting
        "client": {"max_in_flight": 64, "options": {"backend": {"sim": {"latency": "off"}}}},
        # --quick is a smoke test: the hashing embedder skips loading MiniLM
        "policy": {"embedder": "hashing" if quick else "minilm", "embed_cache": str(out / "cache" / "embeddings"),
                   # no role skipping in the demo: with a cheap decision model, "skip every role"
                   # is a local optimum REINFORCE can collapse into (then every DAG is the same)
                   "options": {"hidden": 32 if quick else 64, "layers": 2, "k_proposers": 2,
                               "allow_skip": False}},
        "stage1": {"steps": 6 if quick else 60, "batch_size": 8, "lr": 3e-3, "entropy_beta": 0.02,
                   "temperature_start": 1.5, "temperature_end": 0.7, "dag_pool_size": 16,
                   "val_every": 3 if quick else 10, "checkpoint_every": 20},
        # stage 2 labels by accuracy over 2 runs per candidate (the second run only where the first
        # already separates the candidates): under the cost-aware reward the median split of
        # equally correct candidates is decided by a few prompt tokens, and the classifier then
        # learns "fewer edges" instead of which DAGs answer better (docs/POLICY.md)
        "stage2": {"options": {"n_candidates": 4 if quick else 8, "epochs": 4 if quick else 30,
                               "patience": 6, "lr": 3e-3, "seed": seed, "samples": 2,
                               "resample": "informative", "label_rule": "accuracy"}},
        "reward": {"shape": "linear", "cost_lambda": 100.0, "alpha": 0.5},
        "credit": {"baseline": "moving_average"},
        "tracking": {"wandb": wandb, "progress": False, "designs_every": 1000},
    }


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
    p.add_argument("--pool", default=DEFAULT_POOL, help=f"pool name or YAML (default: {DEFAULT_POOL})")
    p.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default="offline",
                   help="wandb mode (default offline; files stay in --out)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides, e.g. reward.cost_lambda=50 stage1.steps=100")
    p.set_defaults(func=run)


def demo_config(out: Path, seed: int, args: argparse.Namespace):
    from hieramas_gnn.config import Config
    from hieramas_gnn.config_io import from_dict, merge, parse_overrides

    data = merge(settings(out, seed, args.quick, args.pool, args.wandb), parse_overrides(list(args.overrides)))
    return from_dict(Config, data)


def reward_fn(cfg):
    from hieramas_gnn.train.rewards import shape_reward_scalar

    rc = cfg.reward
    return lambda t: shape_reward_scalar(bool(t.correct), float(t.cost_usd), rc.shape, rc.cost_lambda)


def train_seed(cfg, client, test) -> dict[str, Any]:
    """Stage 1 + stage 2 for one seed; the trained pieces and what they cost to train."""
    from hieramas_gnn.config_io import from_dict
    from hieramas_gnn.tracking import Tracker
    from hieramas_gnn.train import stage2
    from hieramas_gnn.train.setup import build_setup
    from hieramas_gnn.train.stage1 import train_stage1

    setup = build_setup(cfg, client=client)
    embedder = setup.builder.features.embedder  # embed every query text in one batch (then cached)
    embedder.embed(sorted({q.text for q in [*setup.train, *setup.val, *test]}))
    s2cfg = from_dict(stage2.Stage2Config, cfg.stage2.options, "stage2.options")
    t0 = time.perf_counter()
    with Tracker(cfg) as tracker:
        s1 = train_stage1(cfg, setup, tracker)
        t1 = time.perf_counter()
        select = stage2.policy_selector(setup.policy, setup.builder, setup.decision)
        scorer = stage2.PolicyGraphScorer(setup.policy, setup.builder)
        s2, rollouts = stage2.fit_stage2(scorer, select, setup.train, setup.val, setup.runner, reward_fn(cfg),
                                         len(setup.builder.role_names), s2cfg, log=tracker.log,
                                         decision=setup.decision)
    return {"setup": setup, "select": select, "scorer": scorer, "s2cfg": s2cfg, "stage1": s1, "stage2": s2,
            "stage2_rollouts": rollouts, "stage1_s": t1 - t0, "stage2_s": time.perf_counter() - t1}


def evaluate_seed(trained: dict[str, Any], test, seed: int, runs: int = 1,
                  reward=None) -> tuple[list[dict], Any, dict]:
    """hieramas (best of K scored candidates) and a random DAG from the same candidates.

    Each is run `runs` times per query (`sample_index` 0..runs-1); its row is over all runs (`n`
    stays the number of queries, `runs` says how many). Returns (rows, the first chosen design,
    per method {"correct": [Q], "reward": [Q]} means over runs, for the paired comparisons of
    `verdict`; `reward` is a trace -> reward function, None: no reward vector).
    """
    from dataclasses import replace

    import numpy as np

    from hieramas_gnn.eval.evaluate import run_repeated, summarize
    from hieramas_gnn.train import stage2

    setup, select, s2cfg = trained["setup"], trained["select"], trained["s2cfg"]
    n_roles = len(setup.builder.role_names)
    propose = stage2.make_proposer(replace(s2cfg, seed=s2cfg.seed + 10_007), n_roles, setup.policy, setup.builder,
                                   setup.decision)
    cands = {q.id: propose(q) for q in test}
    setup.policy.eval()
    chosen = stage2.choose_designs(trained["scorer"], test, select, lambda q: cands[q.id])
    rng = np.random.default_rng(seed + 1)
    rand = select(test, [cands[q.id][int(rng.integers(len(cands[q.id])))] for q in test])
    rows, per_query = [], {}
    for method, designs in (("hieramas", chosen), ("hieramas-random-dag", rand)):
        traces = run_repeated(setup.runner, designs, test, runs)
        rows.append({**summarize(method, traces), "n": len(test), "runs": runs})
        per_query[method] = per_query_vectors(traces, runs, reward)
    return rows, chosen[0], per_query


def pick_decision(cfg, client) -> tuple[str, list[dict]]:
    """The decision model: the pool model whose single answers get the best mean reward on the
    training + validation queries (the decision call reads the sinks and is paid on every query,
    so a cheap model that is right as often as an expensive one is the better pick)."""
    import torch

    from hieramas_gnn.train.rewards import shape_reward
    from hieramas_gnn.train.setup import load_questions

    train, val, _, _ = load_questions(cfg)
    rows = run_baselines(cfg, client, [*train, *val], ("single",))
    acc = torch.tensor([r["accuracy"] for r in rows])  # [M]
    cost = torch.tensor([r["cost_usd"] for r in rows])  # [M]
    reward = shape_reward(acc, cost, cfg.reward.shape, cfg.reward.cost_lambda)  # [M]
    return rows[int(torch.argmax(reward))]["method"].split(":", 1)[1], rows


def per_query_vectors(traces, runs: int, reward=None) -> dict:
    """{"correct": [Q], "reward": [Q]}: per query, the mean over `runs` (traces run-major)."""
    import numpy as np

    from hieramas_gnn.eval.evaluate import per_query_mean

    out = {"correct": np.array(per_query_mean([float(bool(t.correct)) for t in traces], runs))}
    if reward is not None:
        out["reward"] = np.array(per_query_mean([float(reward(t)) for t in traces], runs))
    return out


def run_baselines(cfg, client, test, methods, per_query: dict | None = None) -> list[dict]:
    """The `hieramas baselines` rows on the held-out queries (they do not depend on the seed).
    `per_query`, when given, receives each method's `per_query_vectors` (correctness, reward)."""
    import asyncio

    from hieramas_gnn.eval import baselines as B
    from hieramas_gnn.train.setup import load_models, load_questions, load_roles

    _, _, _, task = load_questions(cfg)
    roleset, _ = load_roles(cfg, task)
    pool, _ = load_models(cfg)
    # baselines keep their default anchor (the pool's first, strongest model): no handicap for them
    bl = B.Baselines(task, roleset, pool.names, B.BaselineConfig(seed=cfg.run.seed))
    methods = B.expand_methods(list(methods), pool.names)
    traces = asyncio.run(B.run_baselines(bl, methods, test, client, max_in_flight=cfg.client.max_in_flight))
    if per_query is not None:
        per_query.update({m: per_query_vectors(ts, 1, reward_fn(cfg)) for m, ts in traces.items()})
    return B.result_rows(traces)


def compare(h: dict, other: dict, n: int, paired: tuple | None = None) -> str:
    """BEATS / TIES / does NOT beat, on accuracy, with a two-standard-error noise band.

    With `paired` = (hieramas [Q], other [Q]) per-query correctness on the same queries (means over
    seeds and runs), the band is 2 standard errors of the mean per-query difference (a paired test:
    the queries every method gets right or wrong cancel). Without it, the unpaired binomial band
    2·sqrt(p1(1-p1)/n + p2(1-p2)/n), which is conservative. Either way a gap of a few queries out of
    n is reported as a tie, not a win.
    """
    from hieramas_gnn.eval import stats

    if paired is not None:
        g = stats.paired_gap(paired[0], paired[1])
        return stats.verdict(g.gap, g.band)
    p1, p2 = h["accuracy"], other["accuracy"]
    return stats.verdict(p1 - p2, stats.unpaired_band(p1, p2, n), "2 SE")


def verdict(rows: list[dict], n: int, per_query: dict | None = None) -> list[str]:
    """The demo's claims, checked on the aggregated rows (mean over seeds) of `n` held-out queries.
    `per_query` (method -> {"correct": [Q], "reward": [Q]}, means over seeds and runs) makes the
    accuracy comparisons paired and adds the comparisons on the cost-aware reward the policy is
    trained for."""
    import numpy as np

    by = {r["method"]: r for r in rows}
    h = by["hieramas"]
    per_query = per_query or {}

    def paired(other: str, key: str = "correct") -> tuple | None:
        if "hieramas" in per_query and key in per_query["hieramas"] and key in per_query.get(other, {}):
            return per_query["hieramas"][key], per_query[other][key]
        return None

    singles = [r for r in rows if r["method"].startswith("single:")]
    best_single = max(singles, key=lambda r: r["accuracy"]) if singles else None
    lines = []
    if best_single:
        lines.append(f"- vs best single model ({best_single['method']}, acc {best_single['accuracy']:.3f}): "
                     f"{compare(h, best_single, n, paired(best_single['method']))} (hieramas acc {h['accuracy']:.3f})")
    for name in ("random", "hieramas-random-dag"):
        if name in by:
            lines.append(f"- vs {name} (acc {by[name]['accuracy']:.3f}, ${by[name]['cost_usd']:.2e}): "
                         f"{compare(h, by[name], n, paired(name))}")
    for name in ("random", "hieramas-random-dag"):
        pair = paired(name, "reward")
        if pair is not None:
            mine, theirs = float(np.mean(pair[0])), float(np.mean(pair[1]))
            lines.append(f"- on the cost-aware reward, vs {name} ({theirs:.3f}; hieramas {mine:.3f}): "
                         f"{compare({'accuracy': mine}, {'accuracy': theirs}, n, pair)}")
    if "moa" in by:
        lines.append(f"- cost vs Mixture-of-Agents (${by['moa']['cost_usd']:.2e}/query): hieramas "
                     f"${h['cost_usd']:.2e}/query, {'LOWER' if h['cost_usd'] < by['moa']['cost_usd'] else 'NOT lower'}")
    return lines


def run(args: argparse.Namespace) -> int:
    from hieramas_gnn.errors import UserError

    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_runs < 1:
        raise UserError(f"--eval-runs must be >= 1, got {args.eval_runs}")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from hieramas_gnn.commands.baselines import backend_name
    from hieramas_gnn.eval import report
    from hieramas_gnn.eval.evaluate import aggregate_seeds
    from hieramas_gnn.export import export_policy
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.train.setup import client_settings, load_models, load_questions, make_client

    ensure_offline_defaults()
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg0 = demo_config(out, 0, args)
    pool, _ = load_models(cfg0)
    client = make_client(client_settings(cfg0), pool)
    _, _, test, _ = load_questions(cfg0)
    if cfg0.pool.decision is None:
        decision, _ = pick_decision(cfg0, client)
        args.overrides = [*args.overrides, f"pool.decision={decision}"]
        cfg0 = demo_config(out, 0, args)
        print(f"decision model (best single reward on train+val queries): {decision}", flush=True)
    base_pq: dict = {}
    base_rows = run_baselines(cfg0, client, test, QUICK_BASELINES if args.quick else DEFAULT_BASELINES, base_pq)
    per_seed, timings, infos, first, learned_pq = [], [], [], None, []
    for seed in range(args.seeds):
        cfg = cfg0 if seed == 0 else demo_config(out, seed, args)
        t0 = time.perf_counter()
        trained = train_seed(cfg, client, test)
        rows, design, pq = evaluate_seed(trained, test, seed, args.eval_runs, reward_fn(cfg))
        learned_pq.append(pq)
        per_seed.append(rows + base_rows)
        timings.append(time.perf_counter() - t0)
        infos.append({"seed": seed, "stage1_best_val_reward": trained["stage1"].best_val_reward,
                      "stage2_val_auc": trained["stage2"].best_val_auc, "stage2_rollouts": trained["stage2_rollouts"],
                      "stage1_s": round(trained["stage1_s"], 1), "stage2_s": round(trained["stage2_s"], 1)})
        if first is None:
            first = (trained, design)
            export_policy(trained["setup"].policy, out / "policy", builder=trained["setup"].builder,
                          decision=trained["setup"].decision, pool_name=cfg.pool.name,
                          extra={"stage2": cfg.stage2.options, "seed": seed})
        print(f"seed {seed}: {rows[0]['accuracy']:.3f} acc, ${rows[0]['cost_usd']:.2e}/query "
              f"({timings[-1]:.0f}s)", flush=True)
    rows = aggregate_seeds(per_seed)
    for r in rows:
        r["runs"] = args.eval_runs if r["method"] in learned_pq[0] else 1
    per_query = {**base_pq, **{m: {k: sum(pq[m][k] for pq in learned_pq) / len(learned_pq) for k in learned_pq[0][m]}
                               for m in learned_pq[0]}}
    wall = time.perf_counter() - start
    meta = {"task": cfg0.task.name, "backend": backend_name(pool), "n": len(test), "pool": cfg0.pool.name,
            "seeds": args.seeds, "eval_runs": args.eval_runs,
            "quick": bool(args.quick), "decision": cfg0.pool.decision, "wall_s": round(wall, 1), "reward": f"{cfg0.reward.shape}, "
            f"lambda={cfg0.reward.cost_lambda}", "per_seed": infos}
    claims = verdict(rows, len(test), per_query)
    report.write_report(out, rows, meta=meta, design=first[1], title="hieramas demo",
                        sections=[("Claims (mean over seeds)", "\n".join(claims)),
                                  ("Per seed", "\n".join(f"- {i}" for i in infos))])
    print(report.markdown_table(rows))
    print("\n".join(claims))
    print(f"wrote {out}/report.md, results.json, pareto.png, topology.png, policy/ in {wall:.0f}s")
    return 0
