"""The cost–accuracy frontier of a learned policy against every baseline's point (`hieramas report`).

An *experiment folder* is what `run_experiment` (`hieramas demo --config ...`) writes:
`results.json` (rows: mean ± std over seeds, and the run's metadata) and `per_query.json` (per
held-out question, each method's correctness, cost and reward, mean over seeds). Training the
policy at several cost weights λ gives several folders on the same task, pool and test questions;
their `hieramas` rows are the learned frontier, and every baseline row is a point to beat.

`frontier_checks` asks, for each baseline point, what the frontier report's bar asks:

- a baseline B (best single, vote, router, cascade, debate, ...): among the learned points that
  cost *no more* than B per query, the most accurate one must be at least as accurate — judged
  paired over the same questions (`stats.py`): BEATS (above by more than two standard
  errors), MATCHES (within them), LOSES (below by more), or NO POINT (none is that cheap);
- MoA: the learned point must beat MoA's accuracy at under half its cost (BEATS; MATCHES is a miss).

Mixed tasks (`tasks/mix.py`): accuracy is the mean over components (`accuracy_task_mean`), the
metric published mixed-task tables report; the paired tests weigh each question by
n / (K · n_component) (K components, n questions), so the mean of a weighted per-query vector is
the mean over components and its standard error is that of the task mean. The tables add one
column per component (`by_component`).

Nothing is re-run: the report reads the folders, so it is as reproducible as they are.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hieramas_gnn.errors import UserError
from hieramas_gnn import stats
from hieramas_gnn.guards import dumps
from hieramas_gnn.stats import task_mean_weights  # noqa: F401  (re-exported: eval/experiment.py)

LEARNED = "hieramas"
# Baselines judged against the frontier (when present): the row name and the rule.
RULES = (("best_single", "cost"), ("best_per_task", "cost"), ("best_design_per_task", "cost"), ("router", "cost"),
         ("knn_router", "cost"), ("contrastive_router", "cost"), ("cascade", "cost"), ("vote", "cost"),
         ("debate", "cost"), ("moa", "half_cost_beats"))


@dataclass
class Experiment:
    """One experiment folder: metadata, aggregated rows by method, per-query vectors by method."""

    path: Path
    meta: dict[str, Any]
    rows: dict[str, dict[str, Any]]
    question_ids: list[str]
    per_query: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)  # per question, for a mixed task

    @property
    def label(self) -> str:
        """What tells this folder's learned point apart: its reward (shape, λ) and overrides."""
        extra = [o for o in self.meta.get("overrides", []) if not o.startswith(("tracking.", "cache.", "policy.embed_cache",
                                                                               "reward.cost_lambda", "reward.shape"))]
        return f"{self.meta.get('reward', '?')}" + (f" [{', '.join(extra)}]" if extra else "")

    @property
    def group(self) -> tuple[str, str, int]:
        return (str(self.meta.get("task")), str(self.meta.get("pool")), int(self.meta.get("n") or 0))


def load_experiment(path: str | Path) -> Experiment:
    """Read `results.json` and `per_query.json` of an experiment folder (clear errors when missing)."""
    path = Path(path)
    results, per_query = path / "results.json", path / "per_query.json"
    if not results.exists():
        raise UserError(f"{path}: no results.json (not an experiment folder; make one with "
                        "`hieramas demo --config CONFIG --out DIR`)")
    try:
        data = json.loads(results.read_text())
        rows = {r["method"]: r for r in data["results"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{results}: not a results.json of `hieramas demo` ({exc})") from None
    if LEARNED not in rows:
        raise UserError(f"{results}: has no `{LEARNED}` row (a baselines-only file?)")
    meta = {k: v for k, v in data.items() if k != "results"}
    qids, vectors, components = [], {}, []
    if per_query.exists():
        pq = json.loads(per_query.read_text())
        qids = list(pq["question_ids"])
        vectors = {m: {k: np.asarray(v, dtype=float) for k, v in vecs.items()} for m, vecs in pq["methods"].items()}
        components = [str(c) for c in pq.get("components") or []]
        if components:  # a mixed task: weigh the questions so that means are means over components
            w = task_mean_weights(components)
            vectors = {m: {**vecs, "correct": vecs["correct"] * w} if "correct" in vecs else vecs
                       for m, vecs in vectors.items()}
    return Experiment(path, meta, rows, qids, vectors, components)


def group_experiments(experiments: Sequence[Experiment]) -> dict[tuple[str, str, int], list[Experiment]]:
    """Folders by (task, pool, n test questions); within a group the test questions must agree."""
    groups: dict[tuple[str, str, int], list[Experiment]] = {}
    for e in experiments:
        groups.setdefault(e.group, []).append(e)
    for key, exps in groups.items():
        ids = {tuple(e.question_ids) for e in exps if e.question_ids}
        if len(ids) > 1:
            raise UserError(f"{key[0]} / {key[1]}: the folders were evaluated on different test questions "
                            f"({', '.join(str(e.path) for e in exps)}); a frontier needs the same ones "
                            "(same task.split_seed, split_by and sizes)")
    return groups


@dataclass
class Point:
    """One method's (mean) accuracy and cost on the group's test questions."""

    method: str
    label: str
    accuracy: float
    accuracy_std: float
    cost_usd: float
    cost_usd_std: float
    seeds: int
    correct: np.ndarray | None
    by_component: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"method": self.method, "label": self.label, "accuracy": round(self.accuracy, 4),
               "accuracy_std": round(self.accuracy_std, 4), "cost_usd": self.cost_usd,
               "cost_usd_std": self.cost_usd_std, "seeds": self.seeds}
        if self.by_component is not None:  # a mixed task: `accuracy` is the mean over components
            out.update(accuracy_task_mean=out["accuracy"],
                       by_component={c: round(v, 4) for c, v in self.by_component.items()})
        return out


def _point(e: Experiment, method: str, label: str) -> Point:
    """A method's point; on a mixed task its accuracy is the mean over components."""
    r = e.rows[method]
    correct = e.per_query.get(method, {}).get("correct")
    key = "accuracy_task_mean" if "accuracy_task_mean" in r else "accuracy"
    by = {str(c): float(v) for c, v in r["by_component"].items()} if "by_component" in r else None
    return Point(method, label, float(r[key]), float(r.get(f"{key}_std", 0.0)), float(r["cost_usd"]),
                 float(r.get("cost_usd_std", 0.0)), int(r.get("seeds", 1)), correct, by)


def learned_points(exps: Sequence[Experiment]) -> list[Point]:
    """The learned policy's point of each folder, cheapest first."""
    return sorted((_point(e, LEARNED, e.label) for e in exps), key=lambda p: p.cost_usd)


def baseline_points(exps: Sequence[Experiment]) -> list[Point]:
    """Every baseline row of the folders; a method measured identically in several folders once,
    fitted ones (fit for each folder's reward) once per distinct result."""
    seen: dict[tuple, Point] = {}
    for e in exps:
        for method in e.rows:
            if method.startswith(LEARNED):
                continue
            p = _point(e, method, method)
            key = (method, round(p.accuracy, 6), round(p.cost_usd, 10))
            if key not in seen:
                if any(k[0] == method for k in seen):  # a fitted method that differs with λ
                    p.label = f"{method} ({e.meta.get('reward', '')})"
                seen[key] = p
    return sorted(seen.values(), key=lambda p: p.cost_usd)


def _judge(mine: Point, theirs: Point, n: int) -> tuple[float, float, float]:
    """(gap, band, p) of accuracy, paired over questions when both have per-query vectors (else
    the conservative unpaired band over `n` questions)."""
    if mine.correct is not None and theirs.correct is not None and mine.correct.shape == theirs.correct.shape:
        g = stats.paired_gap(mine.correct, theirs.correct)
        return g.gap, g.band, g.p_value
    return mine.accuracy - theirs.accuracy, stats.unpaired_band(mine.accuracy, theirs.accuracy, n), float("nan")


def _references(baselines: Sequence[Point], name: str) -> list[Point]:
    """The baseline points a rule is checked against. `best_single` (chosen on train + val) when
    the folders ran it, else the single model most accurate *on the test questions* (stricter)."""
    found = [p for p in baselines if p.method == name]
    if name == "best_single" and not found:
        singles = [p for p in baselines if p.method.startswith("single:")]
        if singles:
            best = max(singles, key=lambda p: (p.accuracy, -p.cost_usd))
            found = [replace(best, label=f"{best.label} (best single on test)")]
    return found


def frontier_checks(learned: Sequence[Point], baselines: Sequence[Point], n: int) -> list[dict[str, Any]]:
    """One check per (rule, baseline point) present, on `n` test questions; see the module docstring."""
    out = []
    for name, rule in RULES:
        for b in _references(baselines, name):
            limit = b.cost_usd if rule == "cost" else 0.5 * b.cost_usd
            eligible = [p for p in learned if (p.cost_usd <= limit if rule == "cost" else p.cost_usd < limit)]
            row: dict[str, Any] = {"baseline": b.label, "baseline_accuracy": round(b.accuracy, 4),
                                   "baseline_cost_usd": b.cost_usd,
                                   "rule": ("accuracy >= baseline at cost <= baseline's" if rule == "cost" else
                                            "accuracy > baseline at cost < half the baseline's")}
            if not eligible:
                out.append({**row, "verdict": "NO POINT", "learned": None})
                continue
            best = max(eligible, key=lambda p: (p.accuracy, -p.cost_usd))
            gap, band, p_value = _judge(best, b, n)
            beats, loses = gap > band, gap < -band
            if rule == "cost":
                verdict = "BEATS" if beats else "LOSES" if loses else "MATCHES"
            else:
                verdict = "BEATS" if beats else "LOSES" if loses else "TIES (not beaten)"
            out.append({**row, "learned": best.label, "learned_accuracy": round(best.accuracy, 4),
                        "learned_cost_usd": best.cost_usd, "gap": round(gap, 4), "band": round(band, 4),
                        "p_value": None if np.isnan(p_value) else round(p_value, 4), "verdict": verdict})
    return out


def designs_table(exps: Sequence[Experiment], top: int = 2) -> list[str]:
    """Markdown lines: per folder and query type, the designs the policy chose most (all seeds)."""
    lines = ["| learned point | query type | designs chosen (share of queries, all seeds) |", "|---|---|---|"]
    for e in exps:
        merged: dict[str, Counter] = {}
        for per_seed in e.meta.get("designs_by_domain") or []:
            for dom, counts in per_seed.items():
                merged.setdefault(dom, Counter()).update(counts)
        for dom, counts in sorted(merged.items()):
            total = sum(counts.values())
            best = counts.most_common(top)
            lines.append(f"| {e.label} | {dom} | " + "; ".join(f"{k} ({c / total:.0%})" for k, c in best) + " |")
    return lines if len(lines) > 2 else []


def plot_frontier(learned: Sequence[Point], baselines: Sequence[Point], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [p.cost_usd for p in learned]
    ax.errorbar(xs, [p.accuracy for p in learned], yerr=[p.accuracy_std for p in learned], fmt="o-",
                color="C3", lw=2, capsize=3, label="hieramas (learned, one point per λ)", zorder=3)
    for p in learned:
        ax.annotate(p.label.split(",")[-1].strip(), (p.cost_usd, p.accuracy), fontsize=7, color="C3",
                    xytext=(4, -10), textcoords="offset points")
    for i, b in enumerate(baselines):
        marker = "s" if not b.method.startswith("single:") else "."
        ax.scatter([b.cost_usd], [b.accuracy], marker=marker, s=40 if marker == "s" else 60, color=f"C{i % 10}",
                   zorder=2)
        ax.annotate(b.label.split(" (")[0].replace("single:", ""), (b.cost_usd, b.accuracy), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("cost $/query (log)")
    ax.set_ylabel("accuracy (held-out)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ablation_rows(base: Experiment, variants: Sequence[Experiment]) -> list[dict[str, Any]]:
    """Each variant's learned point against the base folder's, paired over the same questions."""
    mine = _point(base, LEARNED, base.label)
    rows = []
    for e in variants:
        p = _point(e, LEARNED, e.label)
        gap, band, p_value = _judge(p, mine, int(e.meta.get("n") or 0))
        rows.append({"variant": e.label, "accuracy": round(p.accuracy, 4), "accuracy_std": round(p.accuracy_std, 4),
                     "cost_usd": p.cost_usd, "cost_usd_std": p.cost_usd_std, "seeds": p.seeds,
                     "gap": round(gap, 4), "band": round(band, 4),
                     "p_value": None if np.isnan(p_value) else round(p_value, 4),
                     "verdict": "better" if gap > band else "worse" if gap < -band else "tie"})
    return rows


def ablation_table(base: Experiment, variants: Sequence[Experiment]) -> list[str]:
    mine = _point(base, LEARNED, base.label)
    lines = [f"Base: {base.label} ({base.path}): {mine.accuracy:.3f} ± {mine.accuracy_std:.3f} at "
             f"{mine.cost_usd:.2e} $/query; each variant paired over the same test questions.", "",
             "| variant | accuracy | $/query | accuracy − base ± 2 SE | verdict |", "|---|---:|---:|---:|---|"]
    for r in ablation_rows(base, variants):
        lines.append(f"| {r['variant']} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | {r['cost_usd']:.2e} ± "
                     f"{r['cost_usd_std']:.1e} | {r['gap']:+.3f} ± {r['band']:.3f} | {r['verdict']} |")
    return lines


def report(folders: Sequence[str | Path], out: str | Path, against: str | Path | None = None) -> dict[str, Any]:
    """Write `out/report.md`, one `frontier_<task>.png` per task and `out/report.json`; with
    `against` (a base folder), an ablation table of every folder against it instead."""
    if not folders:
        raise UserError("hieramas report: give at least one experiment folder")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if against is not None:
        base = load_experiment(against)
        variants = [load_experiment(f) for f in folders if Path(f).resolve() != Path(against).resolve()]
        group_experiments([base, *variants])  # same task, pool and test questions
        if any(v.group != base.group for v in variants):
            raise UserError(f"--against {against}: every folder must be on its task, pool and test questions")
        lines = ["# hieramas report: ablations", "", *ablation_table(base, variants), ""]
        (out / "report.md").write_text("\n".join(lines))
        summary = {"base": str(base.path), "ablations": ablation_rows(base, variants)}
        (out / "report.json").write_text(dumps(summary, indent=2, default=str) + "\n")
        return summary
    groups = group_experiments([load_experiment(f) for f in folders])
    lines, summary = ["# hieramas report", "",
                      f"Folders: {', '.join(str(Path(f)) for f in folders)}. Accuracy on held-out questions "
                      "(mean ± std over training seeds); paired tests over the same questions "
                      "(`stats.py`, two standard errors).", ""], {}
    for (task, pool, n), exps in groups.items():
        learned, baselines = learned_points(exps), baseline_points(exps)
        checks = frontier_checks(learned, baselines, n)
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{task}_{Path(pool).stem}")
        plot = plot_frontier(learned, baselines, out / f"frontier_{safe}.png", f"{task} / {Path(pool).stem} (n = {n})")
        seeds = sorted({p.seeds for p in learned})
        comps = sorted({c for p in [*learned, *baselines] for c in (p.by_component or {})})
        head = "accuracy (mean over tasks)" if comps else "accuracy"
        lines += [f"## {task} — pool {pool} — {n} test questions — seeds {', '.join(map(str, seeds))}", "",
                  f"| method | {head} | cost $/query |" + "".join(f" {c} |" for c in comps),
                  "|---|---:|---:|" + "---:|" * len(comps)]

        def per_component(p: Point) -> str:
            return "".join(f" {(p.by_component or {}).get(c, float('nan')):.3f} |" for c in comps)

        for p in learned:
            lines.append(f"| **hieramas** {p.label} | {p.accuracy:.3f} ± {p.accuracy_std:.3f} | "
                         f"{p.cost_usd:.2e} ± {p.cost_usd_std:.1e} |" + per_component(p))
        for p in sorted(baselines, key=lambda p: -p.accuracy):
            lines.append(f"| {p.label} | {p.accuracy:.3f} | {p.cost_usd:.2e} |" + per_component(p))
        lines += ["", f"![frontier]({plot.name})", "", "### The frontier against each baseline", "",
                  "| baseline | its accuracy | its $/query | rule | best learned point allowed | accuracy | $/query | gap ± 2 SE | verdict |",
                  "|---|---:|---:|---|---|---:|---:|---:|---|"]
        for c in checks:
            if c["learned"] is None:
                lines.append(f"| {c['baseline']} | {c['baseline_accuracy']:.3f} | {c['baseline_cost_usd']:.2e} | "
                             f"{c['rule']} | none that cheap | | | | **{c['verdict']}** |")
            else:
                lines.append(f"| {c['baseline']} | {c['baseline_accuracy']:.3f} | {c['baseline_cost_usd']:.2e} | "
                             f"{c['rule']} | {c['learned']} | {c['learned_accuracy']:.3f} | {c['learned_cost_usd']:.2e} | "
                             f"{c['gap']:+.3f} ± {c['band']:.3f} | **{c['verdict']}** |")
        designs = designs_table(exps)
        if designs:
            lines += ["", "### What the policy chose, per query type", "", *designs]
        lines.append("")
        summary[f"{task}|{pool}"] = {"n": n, "learned": [p.to_dict() for p in learned],
                                     "baselines": [p.to_dict() for p in baselines], "checks": checks}
    (out / "report.md").write_text("\n".join(lines))
    (out / "report.json").write_text(dumps(summary, indent=2, default=str) + "\n")
    return summary
