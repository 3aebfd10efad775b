"""Reports: the results table (markdown), a cost–accuracy Pareto plot, the chosen topology, JSON.

`write_report(out, rows, ...)` writes `report.md`, `pareto.png`, `topology.png` (when a design
is given) and `results.json` (the `hieramas baselines` JSON shape: `task`, `backend`, `n`,
and `results`, one row per method, plus run metadata). Rows may carry `<metric>_std` columns
(mean ± std over seeds).
Plots use matplotlib's Agg backend, so no display is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from hieramas_gnn.guards import json_safe
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.draw import draw_design

COLUMNS = (("accuracy", "accuracy", "{:.3f}"), ("cost_usd", "cost $/query", "{:.2e}"),
           ("tokens", "tokens/query", "{:.0f}"), ("calls", "calls/query", "{:.1f}"),
           ("latency_ms_p50", "latency p50 ms", "{:.0f}"))


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if key not in row or row[key] is None:
        return "–"
    text = fmt.format(row[key])
    std = row.get(f"{key}_std")
    return f"{text} ± {fmt.format(std)}" if std is not None and row.get("seeds", 1) > 1 else text


def columns(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The table's columns: a mixed task's rows add `accuracy_task_mean` (the headline: the mean
    over components) and one accuracy column per component."""
    if not any("accuracy_task_mean" in r for r in rows):
        return COLUMNS
    names = sorted({c for r in rows for c in (r.get("by_component") or {})})
    return (("accuracy_task_mean", "accuracy (mean over tasks)", "{:.3f}"),
            ("accuracy", "accuracy (all questions)", "{:.3f}"),
            *((f"by_component.{c}", c, "{:.3f}") for c in names), *COLUMNS[1:])


def _value(row: dict[str, Any], key: str) -> Any:
    if key.startswith("by_component."):
        return (row.get("by_component") or {}).get(key.split(".", 1)[1])
    return row.get(key)


def markdown_table(rows: Sequence[dict[str, Any]], highlight: str | None = "hieramas") -> str:
    """A markdown table of the rows, best accuracy first (a mixed task: best mean over tasks);
    the highlighted method in bold."""
    cols = columns(rows)
    head = "| method | " + " | ".join(title for _, title, _ in cols) + " |"
    sep = "|---|" + "---:|" * len(cols)
    lines = [head, sep]
    for row in sorted(rows, key=lambda r: -float(r.get(cols[0][0], 0.0) or 0.0)):
        name = f"**{row['method']}**" if row["method"] == highlight else row["method"]
        flat = {**row, **{k: _value(row, k) for k, _, _ in cols if k.startswith("by_component.")}}
        lines.append(f"| {name} | " + " | ".join(_cell(flat, k, f) for k, _, f in cols) + " |")
    return "\n".join(lines)


def pareto_front(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Methods not dominated in (lower cost, higher accuracy), cheapest first."""
    front, best = [], -1.0
    for row in sorted(rows, key=lambda r: (float(r["cost_usd"]), -float(r["accuracy"]))):
        if float(row["accuracy"]) > best:
            front.append(row["method"])
            best = float(row["accuracy"])
    return front


def plot_pareto(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "cost vs accuracy",
                highlight: str = "hieramas") -> Path:
    """Scatter of cost per query (log x) vs accuracy, with error bars and the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    front = pareto_front(rows)
    for row in rows:
        x, y = float(row["cost_usd"]), float(row["accuracy"])
        colour = "#d62728" if row["method"] == highlight else ("#1f77b4" if row["method"] in front else "#7f7f7f")
        ax.errorbar(x, y, xerr=row.get("cost_usd_std") or None, yerr=row.get("accuracy_std") or None,
                    fmt="o", color=colour, ms=7 if row["method"] == highlight else 5, capsize=2)
    pts = sorted((float(r["cost_usd"]), float(r["accuracy"])) for r in rows if r["method"] in front)
    if len(pts) > 1:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#1f77b4", lw=0.8, alpha=0.6)
    if all(float(r["cost_usd"]) > 0 for r in rows):
        ax.set_xscale("log")
    ax.set_xlabel("cost per query (USD)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    place_labels(ax, [(float(r["cost_usd"]), float(r["accuracy"]), r["method"]) for r in rows])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# Where a point's label may go (offset in points, alignment), nearest first.
_SPOTS = [(dx, dy, ha, va) for dy0 in (4, 10, 18, 28) for dx, dy, ha, va in
          ((5, dy0, "left", "bottom"), (5, -dy0, "left", "top"), (-5, dy0, "right", "bottom"),
           (-5, -dy0, "right", "top"))]


def place_labels(ax: Any, points: Sequence[tuple[float, float, str]]) -> None:
    """Label each point without overlapping the labels already placed (greedy: for each point,
    the nearest spot whose box overlaps no earlier label, else the one that overlaps least)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for x, y, text in sorted(points, key=lambda p: (-p[1], p[0])):
        best, best_overlap = None, None
        for dx, dy, ha, va in _SPOTS:
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                                ha=ha, va=va, annotation_clip=False)
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            overlap = sum(_area(box, other) for other in placed)
            if best is None or overlap < best_overlap:
                if best is not None:
                    best.remove()
                best, best_overlap = label, overlap
            else:
                label.remove()
            if overlap == 0:
                break
        placed.append(best.get_window_extent(renderer))


def _area(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def results_json(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The `hieramas baselines` JSON shape: `task`, `backend`, `n` (held-out queries) and
    `results` (one row per method), plus any further metadata keys."""
    return {"task": meta.get("task"), "backend": meta.get("backend"), "n": meta.get("n"),
            **meta, "results": [dict(r) for r in rows]}


def write_report(out: str | Path, rows: Sequence[dict[str, Any]], *, meta: dict[str, Any],
                 design: Design | None = None, title: str = "hieramas report",
                 sections: Sequence[tuple[str, str]] = (),
                 results_heading: str = "Results (held-out queries)") -> dict[str, Path]:
    """Write report.md, pareto.png, topology.png (if `design`), results.json; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pareto": plot_pareto(rows, out / "pareto.png", title=f"{meta.get('task', '')} cost vs accuracy")}
    if design is not None:
        paths["topology"] = draw_design(design, out / "topology.png", title="design chosen by hieramas")
    paths["results"] = out / "results.json"

    paths["results"].write_text(json.dumps(json_safe(results_json(rows, meta)), indent=2, default=str, allow_nan=False) + "\n")
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items() if not isinstance(v, (dict, list))]
    lines += ["", f"## {results_heading}", "", markdown_table(rows), "",
              f"Pareto front (cost ↑, accuracy ↑): {', '.join(pareto_front(rows))}", "",
              "![cost vs accuracy](pareto.png)", ""]
    if design is not None:
        lines += ["## Chosen design (first query)", "", "![topology](topology.png)", "",
                  "```json", design.to_json() if hasattr(design, "to_json") else str(design), "```", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", body, ""]
    paths["report"] = out / "report.md"
    paths["report"].write_text("\n".join(lines))
    return paths
