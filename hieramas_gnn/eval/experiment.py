"""One experiment = `hieramas train` per seed + `hieramas eval` of each exported bundle next to
baselines + a report with paired claims. `hieramas demo` is this on `experiments/configs/demo.yaml`
(or `demo_quick.yaml`); the experiments under `experiments/` call the same functions.

- `seed_config(config, out, seed, overrides)`: the run config of one seed, with the run folder,
  rollout cache and embedding cache under `out`.
- `evaluate_bundle(bundle, questions, runner, runs, reward, control=True)`: loads the bundle as a
  user would (`export.load_chooser`), so what is evaluated is what ships; rows for `hieramas`
  and (when the bundle learned a topology) `hieramas-random-dag`: the same mixtures on one of
  the same K candidate DAGs drawn at random (the route `random` of the same choice function).
- `evaluate_lookups(run_dir, bundle, questions, runner, runs, reward)`: for a run warm-started
  per cluster (`stage1.warm_start: search_per_cluster`), the same searches without the GNN:
  `cluster-lookup` (each query gets its cluster's design, `cluster_search.json`) and
  `searched-design` (the global search's one design for every query, `design_search.json`).
- `domain_table(per_query, questions)`: per domain of the held-out questions, the learned policy
  against the most accurate single model of that domain (paired over the domain's questions).
- `run_experiment(...)`: everything above over seeds, plus baselines and the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hieramas_gnn.build import (
    ClientSettings,
    load_models,
    load_questions,
    load_roles,
    make_client,
)
from hieramas_gnn.bundle import load_chooser, read_meta
from hieramas_gnn.config import Config, load_config
from hieramas_gnn.eval import baselines as B
from hieramas_gnn import stats
from hieramas_gnn.eval import report
from hieramas_gnn.eval.evaluate import aggregate_seeds
from hieramas_gnn.eval.frontier import task_mean_weights
from hieramas_gnn.eval.routers import fit_routed_baselines, query_embedder
from hieramas_gnn.guards import dumps
from hieramas_gnn.mas.runner import (
    ExecutorRunner,
    per_query_mean,
    run_repeated,
    summarize,
)
from hieramas_gnn.paths import REPO_ROOT
from hieramas_gnn.progress import bar, phase
from hieramas_gnn.tracking import log_results

CONFIGS = REPO_ROOT / "experiments" / "configs"
DEMO_CONFIG, DEMO_QUICK = CONFIGS / "demo.yaml", CONFIGS / "demo_quick.yaml"
# the demo's settings before its per-cluster warm start (two-proposer mixtures in every role): what
# the topology experiments (experiments/topology_*.py, stage2_vs_random.py) were measured on
MIXTURES_CONFIG, MIXTURES_QUICK = CONFIGS / "demo_mixtures.yaml", CONFIGS / "demo_mixtures_quick.yaml"
DEFAULT_BASELINES = ("single", "moa", "random", "chain", "complete", "vote")
MAX_DOMAINS = 12  # `domain_table` is written for at most this many domains


@dataclass
class EvaluationSetup:
    """What evaluating bundles of one experiment folder on its test questions needs (from its
    seed-0 config): the pool and its client, the test questions, the task, the roleset, a runner."""

    pool: Any
    client: Any
    test: list
    task: Any
    roleset: Any
    runner: ExecutorRunner

    @classmethod
    def from_config(cls, cfg: Config) -> EvaluationSetup:
        pool, _ = load_models(cfg)
        client = make_client(ClientSettings.from_config(cfg), pool)
        _, _, test, task = load_questions(cfg)
        roleset, _ = load_roles(cfg, task)
        return cls(pool, client, test, task, roleset,
                   ExecutorRunner(client, task, roleset, max_in_flight=cfg.client.max_in_flight))


def seed_config(config: str | Path, out: str | Path, seed: int, overrides: Sequence[str] = ()):
    """The config of one seed: run folder `out/runs/seed<seed>`, cache and embeddings in `out/cache`."""
    out = Path(out)
    return load_config(config, [f"run.seed={seed}", f"run.out_dir={out / 'runs' / f'seed{seed}'}",
                                f"cache.path={out / 'cache' / 'rollouts.sqlite'}",
                                f"policy.embed_cache={out / 'cache' / 'embeddings'}", *overrides])


def per_query_vectors(traces: Sequence[Any], runs: int, reward: Callable | None = None) -> dict[str, np.ndarray]:
    """{"correct": [Q], "cost": [Q], "reward": [Q]}: per query, the mean over `runs` (traces run-major)."""
    out = {"correct": np.array(per_query_mean([float(bool(t.correct) and not t.failed) for t in traces], runs)),
           "cost": np.array(per_query_mean([float(t.cost_usd) for t in traces], runs))}
    if reward is not None:
        out["reward"] = np.array(per_query_mean([float(reward(t)) for t in traces], runs))
    return out


def evaluate_bundle(bundle: str | Path, questions: Sequence[Any], runner: Any, runs: int = 1,
                    reward: Callable | None = None, *, pool: Any = None, embed_cache: str | None = None,
                    control: bool = True, designs_out: list | None = None,
                    progress: str | None = None) -> tuple[list[dict], dict, Any]:
    """(rows, per-query vectors by method, the first chosen design) of a bundle on `questions`;
    `designs_out` (a list) receives what the bundle chose per query type (`designs_by_domain`);
    `progress`: the name of a progress bar over the episodes (None: none)."""
    chooser, _ = load_chooser(bundle, pool=pool, embed_cache=embed_cache)
    methods = [("hieramas", chooser)]
    if control and chooser.settings.route != "random":
        methods.append(("hieramas-random-dag", chooser.with_route("random")))
    rows, per_query, first = [], {}, None
    shown = bar(len(methods) * runs * len(questions), progress or "", enabled=progress is not None)
    for method, ch in methods:
        designs = ch.designs(questions)
        if first is None:
            first = designs[0]
            if designs_out is not None:
                designs_out.append(designs_by_domain(designs, questions))
        traces = run_repeated(runner, designs, questions, runs, on_done=shown)
        rows.append({**summarize(method, traces), "n": len(questions), "runs": runs})
        per_query[method] = per_query_vectors(traces, runs, reward)
    shown.close()
    return rows, per_query, first


def evaluate_lookups(run_dir: str | Path, bundle: str | Path, questions: Sequence[Any], runner: Any, runs: int = 1,
                     reward: Callable | None = None, *, embed_cache: str | None = None,
                     progress: str | None = None) -> tuple[list[dict], dict]:
    """(rows, per-query vectors by method) of `cluster-lookup` and `searched-design` on `questions`
    for a run folder with `cluster_search.json` (else nothing): the per-cluster search's designs
    looked up without the GNN (k-means clusters assigned with the bundle's own embedder), and the
    global search's constant design — the comparators that isolate what the GNN adds.
    `progress`: the name of a progress bar over the episodes (None: none)."""
    from hieramas_gnn.train import cluster_search  # lazy: loads torch

    path = Path(run_dir) / cluster_search.FILE
    if not path.exists():
        return [], {}
    found = cluster_search.ClusterDesigns.load(path)
    embed = cluster_search.embedder_fn(read_meta(bundle).feature_builder(cache_dir=embed_cache).embedder)
    rows, per_query = [], {}
    with bar(2 * runs * len(questions), progress or "", enabled=progress is not None) as shown:
        for method, designs in (("cluster-lookup", found.designs_for(questions, embed)),
                                ("searched-design", [found.fallback] * len(questions))):
            traces = run_repeated(runner, designs, questions, runs, on_done=shown)
            rows.append({**summarize(method, traces), "n": len(questions), "runs": runs})
            per_query[method] = per_query_vectors(traces, runs, reward)
    return rows, per_query


def domain_table(per_query: dict, questions: Sequence[Any], method: str = "hieramas",
                 also: Sequence[str] = ("cluster-lookup", "searched-design")) -> list[dict]:
    """Per domain (`meta["domain"]`) of `questions`: the most accurate single model there (ties:
    cheaper; from the `single:<model>` vectors), `method` against it paired over the domain's
    questions (`eval/stats.paired_gap`), and `fails`: significantly less accurate (beyond two
    standard errors) while costing more. `also`: other methods' accuracy and cost per domain.
    Empty without per-query vectors of `method` and of single models, or with under two domains
    or more than `MAX_DOMAINS` (a table a reader can take in: the demo's six, not MMLU's 57)."""
    doms = np.array([str((getattr(q, "meta", None) or {}).get("domain") or "") for q in questions])
    singles = sorted(m for m in per_query if m.startswith("single:"))
    if method not in per_query or not singles or not 2 <= len(set(doms)) <= MAX_DOMAINS:
        return []
    out = []
    for d in sorted(set(doms)):
        idx = np.flatnonzero(doms == d)
        acc = {m: float(np.mean(per_query[m]["correct"][idx])) for m in singles}
        cost = {m: float(np.mean(per_query[m]["cost"][idx])) for m in singles}
        best = min(singles, key=lambda m: (-acc[m], cost[m], m))
        mine = per_query[method]
        g = stats.paired_gap(np.asarray(mine["correct"])[idx], np.asarray(per_query[best]["correct"])[idx])
        my_cost = float(np.mean(np.asarray(mine["cost"])[idx]))
        row = {"domain": d or "(none)", "n": int(len(idx)), "best_single": best, "best_single_accuracy": acc[best],
               "best_single_cost_usd": cost[best], "accuracy": float(np.mean(np.asarray(mine["correct"])[idx])),
               "cost_usd": my_cost, "gap": g.gap, "band": g.band, "p_value": g.p_value,
               "fails": bool(-g.gap > g.band and my_cost > cost[best])}
        for m in also:
            if m in per_query:
                row[m] = {"accuracy": float(np.mean(np.asarray(per_query[m]["correct"])[idx])),
                          "cost_usd": float(np.mean(np.asarray(per_query[m]["cost"])[idx]))}
        out.append(row)
    return out


def domain_markdown(table: Sequence[dict], method: str = "hieramas") -> str:
    """`domain_table` as a markdown table (accuracy at $/query; gap = method − best single ± 2 SE)."""
    also = [m for m in ("cluster-lookup", "searched-design") if any(m in r for r in table)]
    head = (f"| domain | n | most accurate single | {method} | gap ± 2 SE | significantly worse and dearer? | "
            + "".join(f"{m} | " for m in also))
    lines = [head.rstrip(), "|---|---:|---|---:|---:|---|" + "---:|" * len(also)]
    for r in table:
        cells = [r["domain"], str(r["n"]), f"{r['best_single'].removeprefix('single:')} {r['best_single_accuracy']:.3f} "
                 f"@ ${r['best_single_cost_usd']:.1e}", f"{r['accuracy']:.3f} @ ${r['cost_usd']:.1e}",
                 f"{r['gap']:+.3f} ± {r['band']:.3f}", "**yes**" if r["fails"] else "no"]
        cells += [f"{r[m]['accuracy']:.3f} @ ${r[m]['cost_usd']:.1e}" if m in r else "–" for m in also]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims(rows: Sequence[dict], n: int, per_query: dict | None = None,
           components: Sequence[str] | None = None) -> list[str]:
    """The claims checked on the aggregated rows (mean over seeds) of `n` held-out queries, paired
    over queries where per-query vectors exist (`stats.py`). A mixed task (`components`:
    each question's) is judged on the mean over components: `accuracy` below is its
    `accuracy_task_mean`, and the paired vectors are weighted as in `hieramas report`."""
    per_query = per_query or {}
    if components and all("accuracy_task_mean" in r for r in rows):
        w = task_mean_weights(components)
        rows = [{**r, "accuracy": r["accuracy_task_mean"]} for r in rows]
        per_query = {m: {**v, "correct": np.asarray(v["correct"]) * w} if "correct" in v else v
                     for m, v in per_query.items()}
    by = {r["method"]: r for r in rows}
    h = by["hieramas"]

    def judge(other: str, key: str = "correct") -> str:
        a, b = per_query.get("hieramas", {}).get(key), per_query.get(other, {}).get(key)
        if a is not None and b is not None:
            g = stats.paired_gap(a, b)
            return stats.verdict(g.gap, g.band)
        p1, p2 = h["accuracy"], by[other]["accuracy"]
        return stats.verdict(p1 - p2, stats.unpaired_band(p1, p2, n), "2 SE")

    singles = [r for r in rows if r["method"].startswith("single:")]
    lines = []
    if singles:
        best = max(singles, key=lambda r: r["accuracy"])
        lines.append(f"- vs best single model on the test questions ({best['method']}, acc {best['accuracy']:.3f}): "
                     f"{judge(best['method'])} (hieramas acc {h['accuracy']:.3f})")
    for name in ("best_single", "best_per_task", "best_design_per_task", "router", "knn_router", "contrastive_router",
                 "cascade", "vote", "moa", "debate", "random", "hieramas-random-dag", "cluster-lookup", "searched-design"):
        if name in by:
            lines.append(f"- vs {name} (acc {by[name]['accuracy']:.3f}, ${by[name]['cost_usd']:.2e}/query): {judge(name)}")
    for name in ("random", "hieramas-random-dag"):
        if name in by and "reward" in per_query.get(name, {}) and "reward" in per_query.get("hieramas", {}):
            mine, theirs = float(np.mean(per_query["hieramas"]["reward"])), float(np.mean(per_query[name]["reward"]))
            lines.append(f"- on the cost-aware reward, vs {name} ({theirs:.3f}; hieramas {mine:.3f}): {judge(name, 'reward')}")
    if "moa" in by:
        lower = h["cost_usd"] < by["moa"]["cost_usd"]
        lines.append(f"- cost vs Mixture-of-Agents (${by['moa']['cost_usd']:.2e}/query): hieramas "
                     f"${h['cost_usd']:.2e}/query, {'LOWER' if lower else 'NOT lower'}")
    return lines


CONTROL = "hieramas-random-dag"


def _same_methods_every_seed(per_seed: list[list[dict]], learned: list[dict]) -> None:
    """Seeds whose topology route ended `random` have no random-DAG control: their policy already
    chooses a random DAG from the same candidates, so it is its own control. When other seeds do
    have one, that seed's `hieramas` row and per-query vectors stand as its control, so that every
    method is a mean over every seed (a control over fewer seeds would be silently unlike the rest)."""
    if not any(CONTROL in pq for pq in learned):
        return
    for rows, pq in zip(per_seed, learned):
        if CONTROL not in pq:
            own = next(r for r in rows if r["method"] == "hieramas")
            rows.insert(rows.index(own) + 1, {**own, "method": CONTROL})
            pq[CONTROL] = dict(pq["hieramas"])


@dataclass
class ExperimentResult:
    rows: list[dict]
    claims: list[str]
    meta: dict[str, Any]
    per_query: dict = field(default_factory=dict)


def fair_anchor(run_dir: Path) -> str | None:
    """The most accurate single model on train + val (ties: cheaper), from the pipeline's
    `decision.json`: the synthesizer / decision model of the MoA and fixed-topology baselines."""
    path = Path(run_dir) / "decision.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text()).get("rows") or []
    return max(rows, key=lambda r: (r["accuracy"], -r["cost_usd"], r["model"]))["model"] if rows else None


def run_baselines(cfg: Config, client: Any, questions: Sequence[Any], methods: Sequence[str], anchor: str | None,
                  reward: Callable | None = None, progress: str | None = None) -> tuple[list[dict], dict, dict]:
    """The `hieramas baselines` rows on `questions`, their per-query vectors and what the fitted
    methods (`router`, `cascade`, `best_single`, `best_per_task`, ...: `eval/routers.py`) chose. Fitted methods are fit
    on the config's train + val questions only, for the config's cost-aware reward (the policy's
    objective), with the policy's query embedder."""
    import asyncio


    train, val, _test, task = load_questions(cfg)
    roleset, _ = load_roles(cfg, task)
    pool, _ = load_models(cfg)
    bl = B.Baselines(task, roleset, pool.names, B.BaselineConfig(seed=cfg.run.seed_for("eval"), anchor=anchor))
    fitted = {}
    if any(m in B.FITTED for m in methods):
        from hieramas_gnn.train.rewards import reward_function  # lazy: loads torch

        pc = cfg.policy
        embed = query_embedder(pc.embedder, pc.embed_cache, pc.hashing_dim, cfg.run.device)
        routed = asyncio.run(fit_routed_baselines(bl, train, val, client, embed,
                                                  reward_function(cfg.reward),
                                                  cfg.client.max_in_flight, seed=cfg.run.seed_for("eval"),
                                                  methods=[m for m in methods if m in B.FITTED]))
        fitted = routed.describe()
    expanded = B.expand_methods(list(methods), pool.names)
    with bar(len(expanded) * len(questions), progress or "", enabled=progress is not None) as shown:
        traces = asyncio.run(B.run_baselines(bl, expanded, questions, client,
                                             max_in_flight=cfg.client.max_in_flight, on_done=shown))
    return B.result_rows(traces), {m: per_query_vectors(ts, 1, reward) for m, ts in traces.items()}, fitted


def designs_by_domain(designs: Sequence[Any], questions: Sequence[Any]) -> dict[str, dict[str, int]]:
    """{domain: {design summary: count}}: what the learned policy chose per query type."""
    from collections import Counter

    out: dict[str, Counter] = {}
    for d, q in zip(designs, questions):
        out.setdefault(str(q.meta.get("domain") or "all"), Counter())[d.summary()] += 1
    return {dom: dict(c.most_common()) for dom, c in sorted(out.items())}


def write_per_query(out: Path, questions: Sequence[Any], per_query: dict) -> Path:
    """`per_query.json`: question ids and, per method, the per-query correct / cost / reward
    vectors (mean over seeds and runs): what `hieramas report` pairs its tests on; for a mixed
    task also each question's component (the report weighs the questions so that a mean is the
    mean over components)."""
    path = Path(out) / "per_query.json"
    methods = {m: {k: [round(float(x), 8) for x in v] for k, v in vecs.items()} for m, vecs in per_query.items()}
    data: dict[str, Any] = {"question_ids": [q.id for q in questions], "methods": methods}
    if any(q.meta.get("component") for q in questions) and any(q.task != questions[0].task for q in questions):
        data["components"] = [q.meta.get("component") for q in questions]  # a mixed task
    path.write_text(dumps(data) + "\n")
    return path


def run_experiment(config: str | Path, out: str | Path, *, seeds: int = 3, eval_runs: int = 1,
                   baselines: Sequence[str] = DEFAULT_BASELINES, overrides: Sequence[str] = (),
                   title: str = "hieramas experiment", log: Callable[[str], None] = print,
                   group: str | None = None, tags: Sequence[str] = ()) -> ExperimentResult:
    """Train `seeds` policies on `config` (resumable), evaluate each exported bundle on the held-out
    questions next to the baselines, write `report.md`, `results.json`, plots into `out`.

    wandb (`tracking.wandb` of the config or its overrides): every seed's training run and one
    evaluation run (`tracking.log_results`: test accuracy and cost, every baseline, the tables and
    plots) share the group `group` (default: the name of `out`), tagged with `tags`."""
    from hieramas_gnn.train.pipeline import release_freed_memory, train_pipeline  # lazy: loads torch
    from hieramas_gnn.train.rewards import reward_function  # lazy: loads torch

    start, out = time.perf_counter(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    group = group or out.resolve().name
    tags = list(dict.fromkeys(tags))
    overrides = [*overrides, f"tracking.group={group}", f"tracking.tags={json.dumps(tags)}"]
    cfg0 = seed_config(config, out, 0, overrides)
    setup = EvaluationSetup.from_config(cfg0)
    pool, client, test, task, runner = setup.pool, setup.client, setup.test, setup.task, setup.runner
    per_seed, infos, learned, first, base_rows, base_pq, fitted = [], [], [], None, [], {}, {}
    designs: list[dict] = []
    # the seeds differ only in run.seed and their folders, and share the client, task and roleset:
    # a (design, question) of the design search has one outcome for all of them
    search_memo: dict = {}
    for seed in range(seeds):
        cfg = seed_config(config, out, seed, overrides)
        res = None  # the previous seed's policy, builder and runner: not kept while this one trains
        release_freed_memory()
        phase(f"seed {seed}: training ({cfg.run.dir})")
        t0 = time.perf_counter()
        res = train_pipeline(cfg, client=client, search_memo=search_memo)
        t1 = time.perf_counter()
        if seed == 0 and baselines:
            base_rows, base_pq, fitted = run_baselines(cfg, client, test, baselines, fair_anchor(cfg.run.dir),
                                                       reward_function(cfg.reward).of_trace,
                                                       progress=f"baselines on {len(test)} test questions")
        rows, pq, design = evaluate_bundle(res.bundle, test, runner, eval_runs, reward_function(cfg.reward).of_trace, pool=pool,
                                           embed_cache=cfg.policy.embed_cache, designs_out=designs,
                                           progress=f"seed {seed}: evaluating on {len(test)} test questions")
        lookup_rows, lookup_pq = evaluate_lookups(cfg.run.dir, res.bundle, test, runner, eval_runs,
                                                  reward_function(cfg.reward).of_trace,
                                                  embed_cache=cfg.policy.embed_cache,
                                                  progress=f"seed {seed}: lookup rows on {len(test)} test questions")
        rows, pq = rows + lookup_rows, {**pq, **lookup_pq}
        first = first or design
        learned.append(pq)
        per_seed.append(rows + base_rows)
        infos.append({"seed": seed, "accuracy": rows[0]["accuracy"], "cost_usd": rows[0]["cost_usd"],
                      "decision": res.setup.decision, "route": res.topology.route,
                      "stage1_best_val_reward": res.stage1.best_val_reward, **res.topology.summary,
                      "topology_rollouts": res.topology.rollouts, "train_s": round(t1 - t0, 1),
                      "eval_s": round(time.perf_counter() - t1, 1)})
        log(f"seed {seed}: {rows[0]['accuracy']:.3f} acc, ${rows[0]['cost_usd']:.2e}/query "
            f"(train {t1 - t0:.0f}s, eval {time.perf_counter() - t1:.0f}s)")
    _same_methods_every_seed(per_seed, learned)
    rows = aggregate_seeds(per_seed)
    for r in rows:
        r["runs"] = eval_runs if r["method"] in learned[0] else 1
    per_query = {**base_pq, **{m: {k: np.mean([pq[m][k] for pq in learned], axis=0) for k in learned[0][m]}
                               for m in learned[0]}}
    wall = time.perf_counter() - start
    backend = "+".join(dict.fromkeys(m.provider or m.litellm_model for m in pool.models))
    meta = {"task": cfg0.task.name, "backend": backend, "n": len(test), "pool": cfg0.pool.name,
            "config": str(Path(config).resolve().relative_to(REPO_ROOT)) if Path(config).resolve().is_relative_to(REPO_ROOT) else str(config),
            "overrides": list(overrides), "seeds": seeds, "eval_runs": eval_runs, "wall_s": round(wall, 1),
            "reward": f"{cfg0.reward.shape}, lambda={cfg0.reward.cost_lambda}",
            "topology": cfg0.topology.method, "per_seed": infos, "fitted_baselines": fitted,
            "designs_by_domain": designs, "group": group, "tags": tags,
            "llm_cost": client.stats.cost_line(), "llm": client.stats.cost_metrics()}
    mixed = [q.meta.get("component") for q in test] if hasattr(task, "component_names") else None
    found = claims(rows, len(test), per_query, mixed)
    by_domain = domain_table(per_query, test)
    if by_domain:
        meta["by_domain"] = by_domain
    write_per_query(out, test, per_query)
    sections = [("Claims (mean over seeds)", "\n".join(found))]
    if by_domain:
        sections.append(("Per domain: the learned policy vs the most accurate single model of each domain",
                         "Held-out questions of each domain, paired (`stats.py`; mean over seeds and runs). "
                         "The bar: no domain where it is significantly less accurate while costing more.\n\n"
                         + domain_markdown(by_domain)))
    sections.append(("Per seed", "\n".join(f"- {i}" for i in infos)))
    paths = report.write_report(out, rows, meta=meta, design=first, title=title, sections=sections)
    tc = cfg0.tracking
    log_results(out, mode=tc.wandb, name=f"{group}__eval", group=group, rows=rows, tags=tags,
                meta={k: v for k, v in meta.items() if k not in ("per_seed", "designs_by_domain", "by_domain")},
                config={"config": meta["config"], "overrides": list(overrides), "seeds": seeds, "eval_runs": eval_runs,
                        "baselines": list(baselines)},
                project=tc.project, entity=tc.entity, images={f"report/{k}": v for k, v in paths.items() if k in ("pareto", "topology")},
                designs=designs, per_seed=infos)
    return ExperimentResult(rows, found, meta, per_query)
