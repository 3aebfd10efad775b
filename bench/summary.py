"""The flat `summary` of bench/results.json: one figure per key, each with its target.

`assemble(results)` reads the benchmark entries of a results dict (what `bench.run` writes: one
entry per benchmark, each stamped by `bench.run` with `_stamp = {"when", "commit", "quick"}`)
and returns `(summary, summary_detail)`:

- `summary`: `{key: value or None, ..., "machine": {"nproc", "cpu_model", "commit"}}`, flat and
  readable: `results["summary"]["k200_scoring_ms"]` is a number, or `null` when no stamped,
  non-quick entry gives it (a figure is never invented or carried over from elsewhere);
- `summary_detail`: per key `{"value", "unit", "target", "met", "source", "stamp"}`: the target
  (`">= 2000"`), whether the value meets it (`null` when there is no value), the entry and field it
  came from (`"training.replay_1_thread.eps_per_cpu_s"`) and that entry's stamp (when, commit).

Rules: an entry without `_stamp` or stamped `quick: true` (a smoke test's tiny sizes) gives no
figure; `detail[key]["missing"]` says why a value is `null`. `bench.run` rebuilds both objects
from every entry after each benchmark, so `hieramas bench --only NAME` updates the entries it
ran and the summary is assembled from entries of several runs, each with its own stamp.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Figure(NamedTuple):
    """A summary key: where its value lives (first present path wins), its unit and target."""

    paths: tuple[str, ...]
    unit: str
    op: str  # ">=" or "<="
    target: float
    stamp_fields: tuple[str, str] | None = None  # (when, commit) fields of the entry that date the figure itself


FIGURES: dict[str, Figure] = {
    # stage-1 replay training at one torch thread (`run.threads`' default), policy update included
    "replay_train_episodes_per_cpu_s": Figure(("training.replay_1_thread.eps_per_cpu_s", "training.replay.eps_per_cpu_s"),
                                              "episodes / CPU s", ">=", 2000.0),
    "frontier_point_cpu_s_per_seed": Figure(("frontier.cpu_s_per_seed",), "CPU s", "<=", 60.0),
    # K = 200 candidate scoring at one torch thread (`hieramas serve --torch-threads`' and `run.threads`' default)
    "k200_scoring_ms": Figure(("scoring.one_query_1_thread.ms", "scoring.one_query.ms"), "CPU ms / query", "<=", 20.0),
    "policy_load_cpu_s": Figure(("policy_load.cpu_s",), "CPU s", "<=", 2.0),
    "design_unseen_ms_p50": Figure(("design.unseen.p50_ms",), "ms", "<=", 30.0),
    "design_batched_per_s": Figure(("design.batched.questions_per_s",), "questions / s", ">=", 200.0),
    "demo_cpu_s": Figure(("memory.demo.cpu_s",), "CPU s", "<=", 150.0),
    "demo_peak_rss_mb": Figure(("memory.demo.peak_rss_mb",), "MB", "<=", 1200.0),
    "serve_cpu_ms_per_request": Figure(("serve_cpu.cpu_ms_per_request",), "CPU ms / request", "<=", 10.0),
    "pytest_wall_s": Figure(("pytest.wall_s",), "s", "<=", 300.0, stamp_fields=("when", "commit")),
}
KEYS = tuple(FIGURES)
RESERVED = ("_meta", "summary", "summary_detail")


def _get(entry: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(entry, dict) or part not in entry:
            return None
        entry = entry[part]
    return entry


def met(value: float, op: str, target: float) -> bool:
    return value >= target if op == ">=" else value <= target


def machine(results: dict[str, Any]) -> dict[str, Any]:
    meta = results.get("_meta") or {}
    return {"nproc": meta.get("nproc"), "cpu_model": meta.get("cpu_model"), "commit": meta.get("commit")}


def assemble(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, summary_detail) of `results` (module docstring)."""
    summary: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    for key, fig in FIGURES.items():
        row: dict[str, Any] = {"value": None, "unit": fig.unit, "target": f"{fig.op} {fig.target:g}", "met": None,
                               "source": None, "stamp": None}
        why = []
        for path in fig.paths:
            name = path.split(".", 1)[0]
            entry = results.get(name)
            if not isinstance(entry, dict):
                why.append(f"no `{name}` entry")
                continue
            stamp = entry.get("_stamp")
            if not isinstance(stamp, dict):
                why.append(f"`{name}` has no _stamp")
                continue
            if stamp.get("quick"):
                why.append(f"`{name}` is a --quick run")
                continue
            value = _get(entry, path.split(".", 1)[1])
            if isinstance(value, bool) or not isinstance(value, int | float):
                said = entry.get("missing")  # a benchmark may say why it has no figure
                why.append(f"`{path}` absent" + (f" ({said})" if isinstance(said, str) else ""))
                continue
            if fig.stamp_fields:
                own = {"when": entry.get(fig.stamp_fields[0]), "commit": entry.get(fig.stamp_fields[1])}
                stamp = {**own, "read_by": {k: stamp.get(k) for k in ("when", "commit")}}
            row.update(value=value, met=met(value, fig.op, fig.target), source=path,
                       stamp={k: v for k, v in stamp.items() if k != "quick"})
            break
        if row["value"] is None:
            row["missing"] = "; ".join(why)
        summary[key] = row["value"]
        detail[key] = row
    summary["machine"] = machine(results)
    return summary, detail


def refresh(results: dict[str, Any]) -> dict[str, Any]:
    """`results` with its `summary` and `summary_detail` rebuilt from its entries (in place)."""
    results["summary"], results["summary_detail"] = assemble(results)
    return results
