"""Stage-1 training end to end at tiny scale: real task, roles, policy, executor; a fake client.

The fake client answers synthetic questions correctly with a probability that depends on the
model and the role (a planted rule), deterministically per (question, model, role).
"""

import hashlib
import math

import pytest
import torch

from hieramas_gnn.commands.train import train_from_config
from hieramas_gnn.config import load_config
from hieramas_gnn.config_io import all_field_paths, record_reads
from hieramas_gnn.mas.testing import FakeClient
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tracking import read_metrics
from hieramas_gnn.build import load_questions

SKILL = {"big": 0.95, "cheap_a": 0.7, "cheap_b": 0.4}


def _uniform(*parts) -> float:
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64


def _reply(request):
    meta = request.metadata
    task = get_task("synthetic")
    q = task.get(meta["question_id"])
    ok = _uniform(q.id, request.model, meta.get("role"), meta.get("position")) < SKILL.get(request.model, 0.5)
    if ok:
        answer = q.gold
    elif q.meta.get("answer_kind") == "choice":
        answer = "A" if q.gold != "A" else "B"
    else:
        answer = str(int(float(q.gold)) + 1) if str(q.gold).lstrip("-").isdigit() else "12345"
    return task.render_answer(answer, q)


def _stage1_rows(run_dir):
    """metrics.jsonl rows of stage 1 (later phases log on their own axis)."""
    return [r for r in read_metrics(run_dir) if not r.get("axis")]


def _client(fail=None):
    return FakeClient(reply=_reply, fail=fail)


POOL = """
name: tiny
models:
  - {name: big, litellm_model: sim/big, input_cost_per_token: 1.0e-5, output_cost_per_token: 1.0e-5, profile: strong expensive model}
  - {name: cheap_a, litellm_model: sim/cheap_a, input_cost_per_token: 1.0e-7, output_cost_per_token: 1.0e-7, profile: small model a}
  - {name: cheap_b, litellm_model: sim/cheap_b, input_cost_per_token: 1.0e-7, output_cost_per_token: 1.0e-7, profile: small model b}
"""


def _cfg(tmp_path, *extra):
    pool = tmp_path / "tiny.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    pool.write_text(POOL)
    return load_config(None, [
        f"pool.name={pool}", "pool.decision=cheap_a", "task.name=synthetic", "task.train_size=8",
        "task.val_size=4", "task.test_size=0", "roles.family=synthetic",
        "policy.embedder=hashing", "policy.hashing_dim=16", f"policy.embed_cache={tmp_path / 'emb'}",
        "policy.arch={hidden: 16, layers: 1, heads: 2, k_proposers: 1, allow_skip: false}",
        "stage1.steps=4", "stage1.batch_size=3", "stage1.val_every=2", "stage1.checkpoint_every=2",
        "stage1.dag_pool_size=3", "stage1.anneal_steps=4", "stage1.temperature_start=1.5", "stage1.temperature_end=0.5",
        "credit.k=2", "tracking.wandb=disabled", "tracking.progress=false", "tracking.designs_every=2",
        f"run.out_dir={tmp_path / 'run'}", f"cache.path={tmp_path / 'cache.sqlite'}", *extra,
    ])


@pytest.mark.parametrize("baseline", ["none", "moving_average", "counterfactual"])
def test_stage1_runs_and_logs_each_baseline(tmp_path, baseline):
    cfg = _cfg(tmp_path, f"credit.baseline={baseline}")
    result = train_from_config(cfg, client=_client())
    assert result.stage1.step == 4
    rows = _stage1_rows(cfg.run.dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r["policy/loss"]) for r in rows)
    assert "eval/val_reward" in rows[1] and (cfg.run.dir / "best.pt").exists()
    assert (cfg.run.dir / "designs.jsonl").read_text().strip()


def test_counterfactual_runs_extra_rollouts(tmp_path):
    cfg = _cfg(tmp_path, "credit.baseline=counterfactual", "stage1.steps=1")
    train_from_config(cfg, client=_client())
    row = _stage1_rows(cfg.run.dir)[0]
    assert row["train/rollouts"] > cfg.stage1.batch_size


def test_failed_episodes_are_counted_and_training_goes_on(tmp_path):
    cfg = _cfg(tmp_path, "credit.baseline=none", "task.train_size=3", "stage1.steps=2")
    first = load_questions(cfg)[0][0].id  # a training question: in every batch of 3
    fail = lambda req: req.metadata.get("question_id") == first  # noqa: E731
    train_from_config(cfg, client=_client(fail))
    rows = _stage1_rows(cfg.run.dir)
    assert sum(r["train/failed"] for r in rows) > 0
    assert all(math.isfinite(r["policy/loss"]) for r in rows)


def test_rerun_on_the_same_folder_resumes_to_the_same_weights(tmp_path):
    full = _cfg(tmp_path / "a", "credit.baseline=moving_average")
    train_from_config(full, client=_client())
    part = _cfg(tmp_path / "b", "credit.baseline=moving_average", "stage1.steps=2")
    train_from_config(part, client=_client())
    resumed = _cfg(tmp_path / "b", "credit.baseline=moving_average")
    result = train_from_config(resumed, client=_client())
    assert result.stage1.step == 4
    assert [r["step"] for r in _stage1_rows(resumed.run.dir)] == [1, 2, 3, 4]
    a = torch.load(full.run.dir / "checkpoint.pt", weights_only=False)["policy"]
    b = torch.load(resumed.run.dir / "checkpoint.pt", weights_only=False)["policy"]
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_every_config_field_is_read_by_a_training_run(tmp_path, monkeypatch):
    """No knob is parsed and then ignored: two runs (classifier and edges routes) read them all;
    the second builds its runner as `client.executor: ray` does (the Ray runner stubbed: it gets
    the cluster settings and sends the backend settings with each call, as its workers' clients do)."""
    from hieramas_gnn import build
    from hieramas_gnn.distributed.runner import make_runner

    shipped = []

    def ray_runner(executor, address=None, **kw):
        if executor != "ray":
            return make_runner(executor, address, **kw)
        backend = kw["backend"]
        shipped.append((executor, address, kw["workers"], backend.for_provider("sim"), backend.for_provider("replay")))
        return make_runner("local", task=kw["task"], roleset=kw["roleset"], pool=kw["pool"], client=_client(),
                           max_in_flight=kw["max_in_flight"])

    monkeypatch.setattr(build, "make_runner", ray_runner)
    seen: set[str] = set()
    for baseline, route in (("counterfactual", "classifier"), ("moving_average", "edges")):
        ray = ["client.executor=ray", "client.ray_address=auto", "client.ray_workers=2"] if route == "edges" else []
        cfg = _cfg(tmp_path / baseline, f"credit.baseline={baseline}", f"topology.method={route}",
                   "topology.n_candidates=3", "topology.classifier.epochs=2", "topology.edges.steps=2",
                   "topology.edges.batch_size=2", "topology.edges.val_every=1", "topology.edges.checkpoint_every=1",
                   "pool.decision=null" if route == "edges" else "pool.decision=cheap_a",
                   *(["stage1.warm_start=search_per_cluster", "stage1.warm_start_bc=0.5"] if route == "edges" else []), *ray)
        with record_reads(cfg) as reads:
            train_from_config(cfg, client=None if ray else _client())
        seen |= reads
    assert [s[:3] for s in shipped] == [("ray", "auto", 2)]
    from hieramas_gnn.config import DERIVED_FROM, Config

    seen |= {src for derived, srcs in DERIVED_FROM.items() if derived in seen for src in srcs}
    unread = [p for p in all_field_paths(Config) if p not in seen]
    assert unread == []


def test_failure_reasons_are_logged_with_their_counts(tmp_path):
    cfg = _cfg(tmp_path, "credit.baseline=counterfactual", "task.train_size=3", "stage1.steps=1")
    first = load_questions(cfg)[0][0].id  # a training question: in every batch of 3
    fail = lambda req: req.metadata.get("question_id") == first  # noqa: E731
    train_from_config(cfg, client=_client(fail))
    row = _stage1_rows(cfg.run.dir)[0]
    reasons = row["train/failure_reasons"]
    assert row["train/failed_rollouts"] > row["train/failed"] > 0  # counterfactual ones too
    assert 0 < sum(reasons.values()) <= row["train/failed_rollouts"]
    assert all("injected failure" in reason for reason in reasons)
