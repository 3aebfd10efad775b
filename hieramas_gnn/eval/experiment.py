"""One experiment = `hieramas train` per seed + `hieramas eval` of each exported bundle next to
baselines + a report with paired claims. `hieramas demo` is this on `experiments/configs/demo.yaml`
(or `demo_quick.yaml`); the experiments under `experiments/` call the same functions.

- `seed_config(config, out, seed, overrides)`: the run config of one seed, with the run folder,
  rollout cache and embedding cache under `out`.
- `evaluate_bundle(bundle, questions, runner, runs, reward, control=True)`: loads the bundle as a
  user would (`export.load_chooser`), so what is evaluated is what ships; rows for `hieramas`
  and (when the bundle learned a topology) `hieramas-random-dag`: the same mixtures on one of
  the same K candidate DAGs drawn at random (the route `random` of the same choice function).
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
from hieramas_gnn.bundle import load_chooser
from hieramas_gnn.config import Config, load_config
from hieramas_gnn.eval import baselines as B
from hieramas_gnn.eval import report, stats
from hieramas_gnn.eval.evaluate import aggregate_seeds
from hieramas_gnn.eval.routers import fit_routed_baselines, query_embedder
from hieramas_gnn.mas.runner import (
    ExecutorRunner,
    per_query_mean,
    run_repeated,
    summarize,
)
from hieramas_gnn.guards import dumps
from hieramas_gnn.paths import REPO_ROOT
from hieramas_gnn.progress import bar, phase
from hieramas_gnn.tracking import log_results

CONFIGS = REPO_ROOT / "experiments" / "configs"
DEMO_CONFIG, DEMO_QUICK = CONFIGS / "demo.yaml", CONFIGS / "demo_quick.yaml"
DEFAULT_BASELINES = ("single", "moa", "random", "chain", "complete", "vote")


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


def claims(rows: Sequence[dict], n: int, per_query: dict | None = None) -> list[str]:
    """The claims checked on the aggregated rows (mean over seeds) of `n` held-out queries, paired
    over queries where per-query vectors exist (`eval/stats.py`)."""
    by = {r["method"]: r for r in rows}
    h, per_query = by["hieramas"], per_query or {}

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
    for name in ("best_single", "router", "cascade", "vote", "moa", "debate", "random", "hieramas-random-dag"):
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
    methods (`router`, `cascade`, `best_single`; `eval/routers.py`) chose. Fitted methods are fit
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
                                                  cfg.client.max_in_flight, seed=cfg.run.seed_for("eval")))
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
    vectors (mean over seeds and runs): what `hieramas report` pairs its tests on."""
    path = Path(out) / "per_query.json"
    methods = {m: {k: [round(float(x), 8) for x in v] for k, v in vecs.items()} for m, vecs in per_query.items()}
    path.write_text(dumps({"question_ids": [q.id for q in questions], "methods": methods}) + "\n")
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
    from hieramas_gnn.train.pipeline import train_pipeline  # lazy: loads torch
    from hieramas_gnn.train.rewards import reward_function  # lazy: loads torch

    start, out = time.perf_counter(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    group = group or out.resolve().name
    tags = list(dict.fromkeys(tags))
    overrides = [*overrides, f"tracking.group={group}", f"tracking.tags={json.dumps(tags)}"]
    cfg0 = seed_config(config, out, 0, overrides)
    pool, _ = load_models(cfg0)
    client = make_client(ClientSettings.from_config(cfg0), pool)
    _, _, test, task = load_questions(cfg0)
    roleset, _ = load_roles(cfg0, task)
    runner = ExecutorRunner(client, task, roleset, max_in_flight=cfg0.client.max_in_flight)
    per_seed, infos, learned, first, base_rows, base_pq, fitted = [], [], [], None, [], {}, {}
    designs: list[dict] = []
    for seed in range(seeds):
        cfg = seed_config(config, out, seed, overrides)
        phase(f"seed {seed}: training ({cfg.run.dir})")
        t0 = time.perf_counter()
        res = train_pipeline(cfg, client=client)
        t1 = time.perf_counter()
        if seed == 0 and baselines:
            base_rows, base_pq, fitted = run_baselines(cfg, client, test, baselines, fair_anchor(cfg.run.dir),
                                                       reward_function(cfg.reward).of_trace,
                                                       progress=f"baselines on {len(test)} test questions")
        rows, pq, design = evaluate_bundle(res.bundle, test, runner, eval_runs, reward_function(cfg.reward).of_trace, pool=pool,
                                           embed_cache=cfg.policy.embed_cache, designs_out=designs,
                                           progress=f"seed {seed}: evaluating on {len(test)} test questions")
        first = first or design
        learned.append(pq)
        per_seed.append(rows + base_rows)
        infos.append({"seed": seed, "decision": res.setup.decision, "route": res.topology.route,
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
    found = claims(rows, len(test), per_query)
    write_per_query(out, test, per_query)
    paths = report.write_report(out, rows, meta=meta, design=first, title=title,
                                sections=[("Claims (mean over seeds)", "\n".join(found)),
                                          ("Per seed", "\n".join(f"- {i}" for i in infos))])
    tc = cfg0.tracking
    log_results(out, mode=tc.wandb, name=f"{group}__eval", group=group, rows=rows, tags=tags,
                meta={k: v for k, v in meta.items() if k not in ("per_seed", "designs_by_domain")},
                config={"config": meta["config"], "overrides": list(overrides), "seeds": seeds, "eval_runs": eval_runs,
                        "baselines": list(baselines)},
                project=tc.project, entity=tc.entity, images={f"report/{k}": v for k, v in paths.items() if k in ("pareto", "topology")},
                designs=designs)
    return ExperimentResult(rows, found, meta, per_query)
