"""`hieramas collect`: fills the cache, is free the second time, survives SIGKILL, obeys budgets."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from hieramas_gnn.cli import main as cli
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.llm import faults
from hieramas_gnn.llm.cache import RolloutCache


@pytest.fixture(autouse=True)
def fresh_provider():
    faults.register(faults.FaultProvider(fail_times=1, retry_after_s=0.001))
    yield


def _setup(folder, **overrides):
    """A pool of two cheap `faults/` models and a collect config over the synthetic task."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = {"name": "t", "models": [
        {"name": m, "litellm_model": f"faults/{mode}", "input_cost_per_token": 1e-6,
         "output_cost_per_token": 2e-6} for m, mode in (("a", "succeed"), ("b", "ratelimit"))]}
    (folder / "pool.yaml").write_text(yaml.safe_dump(pool))
    cfg = {"task": "synthetic", "limit": 3, "pool": "pool.yaml", "designs": ["single"],
           "cache": "cache.sqlite", "client": {"backoff_base_s": 0.001, "backoff_max_s": 0.01}}
    cfg.update(overrides)
    (folder / "collect.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "collect.yaml"


def _collect(config, *extra):
    summary = config.parent / "summary.json"
    code = cli(["collect", "--config", str(config), "--quiet", "--summary", str(summary), *extra])
    return code, json.loads(summary.read_text())


def _contents(path):
    """(key, model, text, tokens, cost) of every record: what must match between runs."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, model, text, prompt_tokens, completion_tokens, cost_usd "
                            "FROM records ORDER BY key").fetchall()


def test_collect_fills_the_cache_and_a_second_run_makes_zero_calls(tmp_path):
    config = _setup(tmp_path, designs=["single", "chain"])
    code, first = _collect(config)
    assert code == 0 and first["failed"] == 0 and first["provider_calls"] == first["cache_records"] > 0
    code, second = _collect(config)
    assert code == 0 and second["provider_calls"] == 0 and second["spent_usd"] == 0.0
    assert second["cache_hits"] == first["provider_calls"] + first["cache_hits"]  # every request again


def test_collect_runs_a_design_file_with_several_samples(tmp_path):
    from hieramas_gnn.eval.baselines import BaselineConfig, Baselines
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.tasks import get_task

    task = get_task("synthetic")
    design = Baselines(task, get_roleset(task.family), ["a", "b"], BaselineConfig(fixed_k=1, anchor="a")).fixed_design("star")
    (tmp_path / "d.json").write_text(design.to_json())
    code, summary = _collect(_setup(tmp_path, designs=["d.json"], samples=2, limit=2))
    assert code == 0 and summary["traces"] == 4 and summary["failed"] == 0


def test_collect_budget_stops_the_run_below_the_cap(tmp_path):
    code, summary = _collect(_setup(tmp_path, budget_usd=0.003, limit=10))
    assert code == 3 and summary["budget_stopped"]
    assert 0 < summary["spent_usd"] <= 0.003
    assert summary["cache_records"] == summary["provider_calls"]


def _error(config, capsys):
    assert cli(["collect", "--config", str(config), "--quiet"]) == 2
    return capsys.readouterr().err


def test_collect_config_unknown_field_is_named(tmp_path, capsys):
    assert "collect.yaml: unknown config field budget" in _error(_setup(tmp_path, budget=1.0), capsys)


def test_collect_config_bad_client_field_is_named(tmp_path, capsys):
    assert "unknown config field client.retries" in _error(_setup(tmp_path, client={"retries": 2}), capsys)


def test_collect_unknown_design_method_is_named(tmp_path, capsys):
    assert "designs[0]" in _error(_setup(tmp_path, designs=["nosuchmethod"]), capsys)


def test_load_collect_config_requires_the_cache_field(tmp_path):
    from hieramas_gnn.commands.collect import load_collect_config

    config = _setup(tmp_path)
    raw = yaml.safe_load(config.read_text())
    del raw["cache"]
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="cache: required"):
        load_collect_config(config)


def _spawn(config):
    return subprocess.Popen([sys.executable, "-m", "hieramas_gnn.cli", "collect", "--config",
                             str(config), "--quiet", "--summary", str(config.parent / "summary.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _records(path):
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


@pytest.mark.slow
def test_sigkill_mid_collection_then_resume_repays_nothing_and_matches_a_full_run(tmp_path):
    # rpm paces each model to one call per 0.2 s, so the run takes seconds: time to kill it.
    settings = dict(limit=15, client={"rpm": 300, "backoff_base_s": 0.001, "backoff_max_s": 0.01})
    killed = _setup(tmp_path / "killed", **settings)
    proc = _spawn(killed)
    deadline = time.monotonic() + 120
    while _records(killed.parent / "cache.sqlite") < 5:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "collect never wrote 5 records"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    done_before_kill = len(RolloutCache(killed.parent / "cache.sqlite", "replay"))
    assert 5 <= done_before_kill < 30

    code, resumed = _collect(killed)
    assert code == 0
    assert resumed["provider_calls"] == 30 - done_before_kill  # no completed call paid again
    assert resumed["cache_hits"] == done_before_kill

    full = _setup(tmp_path / "full", limit=settings["limit"])  # unpaced: the pace changes no answer
    code, whole = _collect(full)
    assert code == 0 and whole["provider_calls"] == 30
    assert _contents(killed.parent / "cache.sqlite") == _contents(full.parent / "cache.sqlite")
