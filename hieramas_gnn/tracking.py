"""Experiment tracking: metrics.jsonl in the run folder always, wandb when asked, a progress bar.

`Tracker(cfg, run_dir)` is the one side-effecting sink the trainers log to:

- `log(metrics, step, axis=None)`: namespaced keys (`train/*`, `policy/*`, `llm/cost_usd`,
  `llm/cache_hit_rate`, `eval/*`) with an explicit step; appended to `metrics.jsonl` and, unless
  wandb is disabled, sent to wandb. A later phase logs on its own axis (`axis="stage2/epoch"`,
  `"edges/step"`): the axis is declared with `define_metric` (its namespace is plotted against
  it), the row carries `axis: step`, and wandb's own step keeps increasing, so no row is dropped
  for a step that goes backwards.
- `log_designs(rows, step)`: a table of sampled designs (`designs.jsonl` + a `wandb.Table`).
- `log_image(key, path, step)`: a topology PNG; `log_checkpoint(path, name)`: a wandb artifact.
- `log_results(where, ...)`: an evaluation's held-out results as their own run (job type `eval`,
  in the experiment's group): `test/*`, `baselines/<method>/*`, the cost, tables and plots.

A run's wandb `group` (`tracking.group`), `job_type` (`tracking.job_type`) and `tags`
(`tracking.tags`) come from the config; `hieramas experiment` sets them so that every run of one
experiment (each seed's training, then the evaluation) is one group on the dashboard.
- `progress(total, initial)`: a progress bar on stderr (`hieramas_gnn/progress.py`; silent when
  `tracking.progress=false` or under `hieramas --quiet`).

wandb is imported only when a mode other than `disabled` is chosen. Mode `auto` means online
when `WANDB_API_KEY` is set and offline otherwise; WANDB_DIR and its sibling folders are put
inside the run folder. The run name is `{task}__{exp}__{seed}__{time}`, fixed at the first start
of a run folder (`run_name.txt`) so a resumed run keeps its name and wandb id.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from hieramas_gnn.config import Config
from hieramas_gnn.config_io import to_dict
from hieramas_gnn.guards import dumps
from hieramas_gnn.paths import atomic_write_text


def resolve_mode(mode: str) -> str:
    """`auto` → `online` with WANDB_API_KEY set, else `offline`; other modes unchanged."""
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


def run_name(run_dir: Path, task: str, exp: str, seed: int) -> str:
    """The run's name, created once per run folder and re-read on resume."""
    path = run_dir / "run_name.txt"
    if path.exists():
        return path.read_text().strip()
    name = f"{task}__{exp}__{seed}__{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, name + "\n")  # a kill mid-write must not leave an empty name
    return name


class Tracker:
    """Metrics sink for one run (see the module docstring)."""

    def __init__(self, cfg: Config, run_dir: Path | None = None) -> None:
        tc = cfg.tracking
        self.run_dir = Path(run_dir if run_dir is not None else cfg.run.dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.mode = resolve_mode(tc.wandb)
        self.show_progress = tc.progress
        self.group, self.job_type, self.tags = tc.group or None, tc.job_type or None, list(tc.tags) or None
        project, entity = tc.project, tc.entity
        self.name = run_name(self.run_dir, cfg.task.name, cfg.run.name, cfg.run.seed)
        self._metrics = (self.run_dir / "metrics.jsonl").open("a")
        self._designs = (self.run_dir / "designs.jsonl").open("a")
        self._bar = None
        self._wandb_step = -1  # wandb drops rows whose step goes backwards: keep it monotonic
        self._axes: set[str] = set()
        self.wandb = None
        self.run = None
        if self.mode != "disabled":
            self._start_wandb(cfg, project, entity)

    def _start_wandb(self, cfg: Config, project: str, entity: str | None) -> None:
        folder = _wandb_folders(self.run_dir, self.mode)
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, entity=entity, name=self.name, id=self.name.replace("/", "-"),
                              resume="allow", dir=str(folder), mode=self.mode, config=to_dict(cfg),
                              group=self.group, job_type=self.job_type, tags=self.tags)
        self._wandb_step = int(getattr(self.run, "step", 0) or 0) - 1  # a resumed run continues its steps

    # ------------------------------------------------------------------------------ logging
    def log(self, metrics: dict[str, float], step: int, axis: str | None = None) -> None:
        """Log `metrics` at `step` (of the training axis, or of `axis`, e.g. `stage2/epoch`)."""
        extra = {axis: int(step), "axis": axis} if axis else {}
        row = {"step": int(step), "time": time.time(), **extra, **{k: _plain(v) for k, v in metrics.items()}}
        self._metrics.write(dumps(row) + "\n")
        self._metrics.flush()
        if self.run is not None:
            if axis and axis not in self._axes:
                self.run.define_metric(axis)
                self.run.define_metric(f"{axis.split('/')[0]}/*", step_metric=axis)
                self._axes.add(axis)
            payload = dict(metrics, **({axis: int(step)} if axis else {}))
            self._wandb_step = max(self._wandb_step + 1, -1 if axis else int(step))
            self.run.log(payload, step=self._wandb_step)
        if self._bar is not None:
            shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in metrics.items()
                     if k in ("train/reward", "train/accuracy", "llm/cost_usd") and isinstance(v, (int, float))}
            self._bar.set_postfix(shown)

    def log_designs(self, rows: Iterable[dict[str, Any]], step: int) -> None:
        rows = [dict(r, step=int(step)) for r in rows]
        for r in rows:
            self._designs.write(dumps(r, default=str) + "\n")
        self._designs.flush()
        if self.run is not None and rows:
            cols = list(rows[0])
            table = self.wandb.Table(columns=cols, data=[[_plain(r.get(c)) for c in cols] for r in rows])
            self.run.log({"train/designs": table}, step=max(self._wandb_step, int(step)))

    def log_image(self, key: str, path: Path, step: int) -> None:
        if self.run is not None:
            self.run.log({key: self.wandb.Image(str(path))}, step=max(self._wandb_step, int(step)))

    def log_checkpoint(self, path: Path, name: str = "checkpoint") -> None:
        if self.run is not None:
            art = self.wandb.Artifact(f"{self.name}-{name}".replace("/", "-"), type="model")
            art.add_file(str(path))
            self.run.log_artifact(art)

    def log_bundle(self, bundle_dir: Path, name: str = "policy") -> None:
        """The exported policy bundle (a folder) as a wandb `model` artifact."""
        if self.run is not None:
            art = self.wandb.Artifact(f"{self.name}-{name}".replace("/", "-"), type="model")
            art.add_dir(str(bundle_dir))
            self.run.log_artifact(art)

    # ----------------------------------------------------------------------------- console
    def progress(self, total: int, initial: int = 0, desc: str = "train") -> None:
        """Start the console progress bar (advance it with `advance()`)."""
        from hieramas_gnn.progress import bar

        if self._bar is not None:
            self._bar.close()
        self._bar = bar(total, desc, initial, enabled=self.show_progress)

    def end_progress(self) -> None:
        """Close the progress bar (its final line is printed now, not when the tracker closes)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._metrics.close()
        self._designs.close()
        if self.run is not None:
            self.run.finish()
            self.run = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _wandb_folders(where: Path, mode: str) -> Path:
    """Point wandb's folders into `where/wandb` (created) and set its mode; returns the folder."""
    # absolute: wandb's service process outlives a run and resolves a relative folder against its own
    # working directory, which is the one of the first run a process started
    folder = Path(where).resolve() / "wandb"
    for var, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", ".cache"),
                     ("WANDB_CONFIG_DIR", ".config"), ("WANDB_DATA_DIR", ".data")):
        path = folder / sub if sub else folder
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    return folder


RESULT_COLUMNS = ("accuracy", "cost_usd", "tokens", "calls", "latency_ms_p50", "n", "n_failed")
"""The columns of a results row that `log_results` sends (with their `_std` over seeds)."""


def result_metrics(rows: Iterable[dict[str, Any]], learned: str = "hieramas") -> dict[str, float]:
    """A report's rows as wandb metrics: the learned policy's held-out figures as `test/<column>`,
    every other method (baselines, controls) as `baselines/<method>/<column>`."""
    out: dict[str, float] = {}
    for row in rows:
        prefix = "test" if row["method"] == learned else f"baselines/{row['method']}"
        for col in RESULT_COLUMNS:
            for key in (col, f"{col}_std"):
                value = row.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"{prefix}/{key}"] = float(value)
    return out


def log_results(where: str | Path, *, mode: str, name: str, group: str | None, rows: list[dict[str, Any]],
                meta: dict[str, Any], tags: Iterable[str] = (), config: dict[str, Any] | None = None,
                project: str = "hieramas_gnn", entity: str | None = None, job_type: str = "eval",
                images: dict[str, Path] | None = None, designs: list[dict[str, Any]] | None = None,
                per_seed: list[dict[str, Any]] | None = None) -> Path | None:
    """One wandb run (job type `eval`, in the experiment's `group`) holding an evaluation's results:
    `test/*` for the learned policy and `baselines/<method>/*` for every other row (accuracy, cost
    per query, tokens, calls, latency, with `_std` over seeds), the LLM cost (`llm/paid_usd`,
    `llm/cached_usd`, `llm/total_usd`), a `results` table (the report's table), a
    `chosen_designs` table (the design chosen per query type, per seed), a `per_seed` table (each
    training seed's held-out accuracy and cost, from `per_seed` rows) and the report's plots.
    Files stay in `where/wandb`; returns that folder, None when `mode` is `disabled`."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    folder = _wandb_folders(Path(where), mode)
    import wandb

    run = wandb.init(project=project, entity=entity, name=name, group=group or None, job_type=job_type,
                     tags=list(tags) or None, dir=str(folder), mode=mode, config=config or {}, reinit="finish_previous")
    try:
        metrics = result_metrics(rows)
        metrics.update({k: float(v) for k, v in (meta.get("llm") or {}).items() if isinstance(v, (int, float))})
        cols = ["method", *RESULT_COLUMNS, "seeds"]
        table = wandb.Table(columns=cols, data=[[_plain(r.get(c)) for c in cols] for r in rows])
        payload: dict[str, Any] = {**metrics, "results": table}
        if designs:
            data = [[seed, domain, design, count] for seed, by_domain in enumerate(designs)
                    for domain, counts in by_domain.items() for design, count in counts.items()]
            payload["chosen_designs"] = wandb.Table(columns=["seed", "domain", "design", "count"], data=data)
        if per_seed:
            cols = ["seed", "accuracy", "cost_usd", "decision", "route", "train_s", "eval_s"]
            payload["per_seed"] = wandb.Table(columns=cols, data=[[_plain(r.get(c)) for c in cols] for r in per_seed])
        for key, path in (images or {}).items():
            if Path(path).is_file():
                payload[key] = wandb.Image(str(path))
        run.log(payload)
        run.summary.update({k: v for k, v in meta.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
    finally:
        run.finish()
    return folder


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (empty when absent), one per (axis, step): a run resumed
    after a kill logs the steps since its last checkpoint again, and the last row of a step wins
    (it stays at the place of the step's first row)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(str(row.get("axis") or ""), row.get("step"))] = row
    return list(rows.values())
