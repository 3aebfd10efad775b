"""`--executor ray` on a local Ray cluster: the same cache and results as a local run, a killed
worker costs nothing twice, and the budget holds over all workers.

One module-scoped cluster (`ray.init(num_cpus=2)`, usage stats off); the tests are few because
the machine has two cores. Without Ray installed they skip, except under CI=true, where they fail
(CI installs requirements.txt, which pins ray).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import tempfile

import numpy as np
import pytest
import yaml

from hieramas_gnn.cli import main as cli
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.executor import Job
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.topologies import random_design
from hieramas_gnn.tasks import get_task

SIM_ENV = {"HIERAMAS_SIM_LATENCY": "off"}  # read by older releases only; the settings travel per call now
NO_LATENCY = {"sim": {"latency": "off"}}

pytestmark = pytest.mark.xdist_group("ray")  # one local cluster: every Ray test on one xdist worker


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ModuleNotFoundError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and ray is not installed: the Ray tests may not skip in CI")
        pytest.skip("ray is not installed (pip install '.[ray]')")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    saved = {k: os.environ.get(k) for k in SIM_ENV}
    os.environ.update(SIM_ENV)  # before ray.init: workers inherit it
    # Ray's socket paths must stay under 108 bytes: a short session folder, not the test TMPDIR.
    session = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=session)
    yield ray
    ray.shutdown()
    shutil.rmtree(session, ignore_errors=True)
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _records(path):
    """Every record's content; created_at and latency_ms are wall-clock and differ between any
    two runs, local or not."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, model, text, prompt_tokens, completion_tokens, cost_usd, "
                            "request FROM records ORDER BY key").fetchall()


def _without_latency(rows):
    return [{k: v for k, v in r.items() if k != "latency_ms_p50"} for r in rows]


def test_collect_with_ray_fills_the_same_cache_as_local(ray_cluster, tmp_path):
    cfg = {"task": "synthetic", "limit": 6, "pool": "sim", "designs": ["single", "chain", "vote"],
           "cache": "cache.sqlite", "max_in_flight": 8, "backend": {"sim": {"latency": "off"}},
           "anchor": "gpt-4o"}  # under Ray the anchor is set: each worker would rank the pool itself
    caches = {}
    for executor in ("local", "ray"):
        folder = tmp_path / executor
        folder.mkdir()
        (folder / "collect.yaml").write_text(yaml.safe_dump(cfg))
        code = cli(["collect", "--config", str(folder / "collect.yaml"), "--quiet",
                    "--summary", str(folder / "summary.json"), "--executor", executor])
        summary = json.loads((folder / "summary.json").read_text())
        assert code == 0 and summary["failed"] == 0
        assert summary["provider_calls"] == summary["cache_records"]  # each call paid once
        caches[executor] = _records(folder / "cache.sqlite")
    assert len(caches["local"]) > 0
    assert caches["ray"] == caches["local"]


def test_baselines_with_ray_give_the_same_results_as_local(ray_cluster, tmp_path):
    results = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"{executor}.json"
        code = cli(["baselines", "--task", "synthetic", "--pool", "sim", "--limit", "6",
                    "--methods", "single:gpt-4o", "vote", "chain", "--max-in-flight", "8", "--sim-latency", "off", "--anchor", "gpt-4o",
                    "--cache", str(tmp_path / f"{executor}.sqlite"), "--json", str(out),
                    "--executor", executor])
        assert code == 0
        results[executor] = json.loads(out.read_text())
    assert _without_latency(results["ray"]["results"]) == _without_latency(results["local"]["results"])
    assert _records(tmp_path / "ray.sqlite") == _records(tmp_path / "local.sqlite")


def _design_jobs(n):
    task = get_task("synthetic")
    roleset, pool = get_roleset(task.family), load_pool("sim")
    rng = np.random.default_rng(0)
    jobs = [Job(random_design(roleset.names[:3], pool.names, rng), q, task, roleset)
            for q in task.load(limit=n)]
    return jobs, task, roleset, pool


def test_a_killed_worker_loses_only_its_calls_in_flight(ray_cluster, tmp_path, monkeypatch):
    from hieramas_gnn.distributed.runner import RayRunner, make_runner

    slow = {"sim": {"latency": "fixed", "fixed_latency_ms": 20}}  # calls are in flight at the kill
    jobs, task, roleset, pool = _design_jobs(12)
    local = make_runner("local", task=task, roleset=roleset, pool=pool,
                        cache_path=str(tmp_path / "local.sqlite"), max_in_flight=8,
                        backend=slow)
    local_traces = local.run([(j.design, j.question) for j in jobs])
    local_cost = sum(t.cost_usd for t in local_traces)
    budget = 3 * local_cost  # room for the written-off reservations of the killed calls

    runner = RayRunner(task=task, roleset=roleset, pool=pool, cache_path=str(tmp_path / "ray.sqlite"),
                       cache_mode="rw", client_config=ClientConfig(budget_usd=budget), backend=slow, workers=2,
                       max_in_flight=8)
    victim = runner.worker_pids()[0]
    done = []

    def kill_after_three(trace):
        done.append(trace)
        if len(done) == 3:
            os.kill(victim, signal.SIGKILL)

    try:
        traces = runner.run_jobs(jobs, on_done=kill_after_three)
        totals = runner.totals
    finally:
        runner.close()
    assert runner.report.worker_deaths == 1 and runner.report.retried_shards >= 1
    assert runner.report.duplicate_records == 0  # no record written twice
    assert _records(tmp_path / "ray.sqlite") == _records(tmp_path / "local.sqlite")
    # Provider calls made minus records written = calls made again after the death. Only the
    # dead worker's calls in flight may be among them (at most its share of max_in_flight, 4):
    # its finished calls were cache hits for the retried shards.
    repaid = runner.stats.calls - runner.report.records_written
    assert 0 <= repaid <= 4
    assert runner.stats.cache_hits > 0
    assert totals.committed_usd <= budget
    assert [t.correct for t in traces] == [t.correct for t in local_traces]


def test_the_budget_holds_over_all_workers(ray_cluster, tmp_path):
    from hieramas_gnn.distributed.runner import RayRunner

    jobs, task, roleset, pool = _design_jobs(12)
    budget = 0.02  # well short of the ~$0.1 the 12 queries cost
    runner = RayRunner(task=task, roleset=roleset, pool=pool, cache_path=str(tmp_path / "c.sqlite"),
                       cache_mode="rw", client_config=ClientConfig(budget_usd=budget), backend=NO_LATENCY, workers=2,
                       max_in_flight=8)
    try:
        traces = runner.run_jobs(jobs)
        totals = runner.totals
    finally:
        runner.close()
    assert totals.refused > 0 and any(t.failed for t in traces)
    assert totals.committed_usd <= budget
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        assert conn.execute("SELECT SUM(cost_usd) FROM records").fetchone()[0] <= budget


def _train_config(folder, tmp_path):
    """A tiny `hieramas train` config on the sim pool: stage 1 (counterfactual re-samples and
    validation) and the stage-2 candidates all generate rollouts."""
    cfg = {"run": {"name": "ray", "seed": 0, "out_dir": str(folder / "run")},
           "task": {"name": "synthetic", "split": "test", "train_size": 8, "val_size": 4, "test_size": 4},
           "pool": {"name": "sim"}, "cache": {"path": str(folder / "cache.sqlite"), "mode": "rw"},
           "client": {"max_in_flight": 8}, "backend": {"sim": {"latency": "off"}},
           "policy": {"embedder": "hashing", "hashing_dim": 16, "embed_cache": str(tmp_path / "emb"),
                      "arch": {"hidden": 16, "layers": 1, "heads": 2, "k_proposers": 1, "allow_skip": False}},
           "stage1": {"steps": 2, "batch_size": 3, "val_every": 2, "checkpoint_every": 2, "dag_pool_size": 3,
                      "anneal_steps": 2},
           "topology": {"method": "classifier", "n_candidates": 3,
                        "classifier": {"epochs": 2, "min_spread": 0.0}},
           "credit": {"baseline": "counterfactual", "k": 2},
           "tracking": {"wandb": "disabled", "progress": False}}
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_with_ray_makes_the_same_rollouts_and_policy_as_local(ray_cluster, tmp_path, monkeypatch):
    """`hieramas train --executor ray`: every rollout-generating phase on Ray workers gives the
    cache, the stage-1 metrics and the trained policy's choices of a local run."""
    from hieramas_gnn.distributed.runner import RayRunner
    from hieramas_gnn.bundle import load_chooser

    ran_on_ray = []
    run_jobs = RayRunner.run_jobs
    monkeypatch.setattr(RayRunner, "run_jobs", lambda self, jobs, **kw: ran_on_ray.append(len(jobs)) or
                        run_jobs(self, jobs, **kw))

    out = {}
    for executor in ("local", "ray"):
        folder = tmp_path / executor
        folder.mkdir()
        flags = ["--executor", executor] + (["--ray-workers", "2"] if executor == "ray" else [])
        assert cli(["train", "--config", str(_train_config(folder, tmp_path)), *flags]) == 0
        metrics = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
        rewards = [(m.get("step"), m.get("eval/val_reward"), m.get("policy/loss")) for m in metrics
                   if "policy/loss" in m or "eval/val_reward" in m]
        chooser, _meta = load_chooser(folder / "run" / "policy")
        questions = get_task("synthetic").load(None, "test", limit=40)[-3:]
        out[executor] = (_records(folder / "cache.sqlite"), rewards,
                         [d.to_dict() for d in chooser.designs([q.text for q in questions])])
    assert len(out["local"][0]) > 0 and out["local"][1]
    assert len(ran_on_ray) >= 4  # decision scan, stage-1 steps and validation, stage-2 candidates
    assert out["ray"][0] == out["local"][0]
    assert out["ray"][1] == out["local"][1]
    assert out["ray"][2] == out["local"][2]
