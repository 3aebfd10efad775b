"""Tracking: metrics.jsonl always, wandb offline files inside the run folder, stable run names."""

import re

from hieramas_gnn.config import load_config
from hieramas_gnn.tracking import Tracker, read_metrics, resolve_mode


def _cfg(tmp_path, mode):
    return load_config(None, [f"tracking.wandb={mode}", "tracking.progress=false",
                              f"run.out_dir={tmp_path / 'run'}", "run.name=exp", "run.seed=3"])


def test_disabled_mode_still_writes_metrics_jsonl(tmp_path):
    cfg = _cfg(tmp_path, "disabled")
    with Tracker(cfg) as t:
        t.log({"train/reward": 0.5, "llm/cost_usd": 0.01}, step=1)
        t.log({"train/reward": 0.7}, step=2)
        assert t.run is None
    rows = read_metrics(cfg.run.dir)
    assert [(r["step"], r["train/reward"]) for r in rows] == [(1, 0.5), (2, 0.7)]


def test_run_name_has_task_exp_seed_time_and_survives_a_restart(tmp_path):
    cfg = _cfg(tmp_path, "disabled")
    with Tracker(cfg) as t:
        first = t.name
    with Tracker(cfg) as t:
        assert t.name == first
    assert re.fullmatch(r"synthetic__exp__3__\d{8}-\d{6}", first)


def test_auto_mode_is_offline_without_a_key_and_online_with_one(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    assert resolve_mode("disabled") == "disabled"


def test_offline_wandb_keeps_its_files_in_the_run_folder(tmp_path):
    cfg = _cfg(tmp_path, "offline")
    with Tracker(cfg) as t:
        t.log({"train/reward": 1.0}, step=1)
        t.log_designs([{"question": "q1", "design": "{}", "reward": 1.0}], step=1)
    assert list((cfg.run.dir / "wandb").rglob("*.wandb"))
    assert (cfg.run.dir / "designs.jsonl").read_text().count("q1") == 1


class _RecordingRun:
    """Stands in for a wandb run: records define_metric calls and the step of every log."""

    step = 0

    def __init__(self):
        self.steps, self.defined = [], []

    def define_metric(self, name, step_metric=None):
        self.defined.append((name, step_metric))

    def log(self, payload, step=None):
        self.steps.append((step, dict(payload)))

    def finish(self):
        pass


def test_a_later_phase_logs_on_its_own_axis_and_no_wandb_step_goes_backwards(tmp_path):
    cfg = _cfg(tmp_path, "disabled")
    with Tracker(cfg) as t:
        t.run = _RecordingRun()
        for step in (1, 2, 3):
            t.log({"train/reward": 0.1 * step}, step=step)
        for epoch in (0, 1):
            t.log({"stage2/loss": 1.0 / (epoch + 1)}, epoch, axis="stage2/epoch")
        run, t.run = t.run, None
    steps = [s for s, _ in run.steps]
    assert steps == sorted(set(steps)) and len(steps) == 5  # strictly increasing: no row dropped
    assert ("stage2/*", "stage2/epoch") in run.defined
    assert run.steps[-1][1]["stage2/epoch"] == 1
    rows = read_metrics(cfg.run.dir)
    assert [r.get("axis") for r in rows] == [None, None, None, "stage2/epoch", "stage2/epoch"]
    assert [r["step"] for r in rows[3:]] == [0, 1]


def test_a_step_logged_again_after_a_resume_is_read_once_with_its_last_values(tmp_path):
    cfg = _cfg(tmp_path, "disabled")
    with Tracker(cfg) as t:  # killed after step 3; the last checkpoint was at step 2
        for step in (1, 2, 3):
            t.log({"train/reward": step / 10}, step=step)
        t.log({"stage2/auc": 0.4}, step=1, axis="stage2/epoch")
    with Tracker(cfg) as t:  # the resumed run re-does step 3 and stage 2
        t.log({"train/reward": 0.3, "llm/cache_hit_rate": 1.0}, step=3)
        t.log({"stage2/auc": 0.4}, step=1, axis="stage2/epoch")
        t.log({"stage2/auc": 0.6}, step=2, axis="stage2/epoch")
    rows = read_metrics(cfg.run.dir)
    assert [(r.get("axis"), r["step"]) for r in rows] == [(None, 1), (None, 2), (None, 3), ("stage2/epoch", 1),
                                                          ("stage2/epoch", 2)]
    assert rows[2]["llm/cache_hit_rate"] == 1.0
