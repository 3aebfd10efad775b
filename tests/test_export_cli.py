"""`hieramas export --run RUN_DIR --out DIR` on a tiny real training run (fake LLM client)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from hieramas_gnn.cli import main
from hieramas_gnn.bundle import load_policy

POOL = """
name: tiny
models:
  - {name: big, litellm_model: sim/big, input_cost_per_token: 1.0e-5, output_cost_per_token: 1.0e-5, profile: strong expensive model}
  - {name: cheap_a, litellm_model: sim/cheap_a, input_cost_per_token: 1.0e-7, output_cost_per_token: 1.0e-7, profile: small model a}
"""


def _reply(request):
    from hieramas_gnn.tasks import get_task

    task = get_task("synthetic")
    q = task.get(request.metadata["question_id"])
    h = hashlib.sha256(repr((q.id, request.model)).encode()).digest()[0]
    return task.render_answer(q.gold if h % 2 else "12345", q)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from hieramas_gnn.commands.train import train_from_config
    from hieramas_gnn.config import load_config
    from hieramas_gnn.mas.testing import FakeClient

    tmp = tmp_path_factory.mktemp("export_cli")
    (tmp / "tiny.yaml").write_text(POOL)
    cfg = load_config(None, [
        f"pool.name={tmp / 'tiny.yaml'}", "pool.decision=cheap_a", "task.name=synthetic",
        "task.train_size=4", "task.val_size=2", "task.test_size=0", "roles.family=synthetic",
        "policy.embedder=hashing", "policy.hashing_dim=16", f"policy.embed_cache={tmp / 'emb'}",
        "policy.arch={hidden: 16, layers: 1, heads: 2, k_proposers: 2}",
        "topology.n_candidates=3", "topology.classifier.epochs=2",
        "stage1.steps=2", "stage1.batch_size=2", "stage1.val_every=1", "stage1.checkpoint_every=1",
        "stage1.dag_pool_size=2", "tracking.wandb=disabled", "tracking.progress=false",
        f"run.out_dir={tmp / 'run'}", f"cache.path={tmp / 'cache.sqlite'}",
    ])
    train_from_config(cfg, client=FakeClient(reply=_reply))
    return cfg.run.dir


def test_export_writes_a_bundle_with_the_trained_weights(run_dir, tmp_path):
    assert main(["export", "--run", str(run_dir), "--out", str(tmp_path / "b")]) == 0
    policy, meta = load_policy(tmp_path / "b", pool=["big", "cheap_a"])
    trained = torch.load(run_dir / "best.pt", weights_only=False)["policy"]
    assert all(torch.equal(policy.state_dict()[k], trained[k]) for k in trained)
    assert meta.decision == "cheap_a" and meta.extra["task"] == "synthetic" and meta.family == "synthetic"
    assert meta.embedder == "hashing-16" and meta.policy_config["k_proposers"] == 2


def test_exported_bundle_chooses_designs_over_the_run_roles(run_dir, tmp_path):
    from hieramas_gnn.bundle import load_chooser

    main(["export", "--run", str(run_dir), "--out", str(tmp_path / "b")])
    chooser, meta = load_chooser(tmp_path / "b")
    design = chooser.designs(["what is 3 + 4?"])[0]
    assert list(design.roles) == meta.role_names and design.decision == meta.decision


def test_export_of_a_folder_without_config_fails_with_exit_2(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_export_with_a_missing_checkpoint_names_it(run_dir, tmp_path, capsys):
    assert main(["export", "--run", str(run_dir), "--out", str(tmp_path / "b"), "--checkpoint", "nope.pt"]) == 2
    assert "nope.pt" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bundle_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "b"
    assert main(["export", "--run", str(run_dir), "--out", str(out)]) == 0
    return out


def _first_question_id() -> str:
    from hieramas_gnn.tasks import get_task

    return get_task("synthetic").load(None, "test", limit=1)[0].id


def test_run_policy_executes_the_greedy_design_and_returns_its_trace(bundle_dir):
    from hieramas_gnn.commands.run import format_trace, run_policy
    from hieramas_gnn.mas.testing import FakeClient

    qid = _first_question_id()
    design, trace = run_policy(str(bundle_dir), "synthetic", qid, FakeClient(reply=_reply))
    assert trace.question_id == qid and not trace.failed and trace.n_calls >= 1
    assert design.decision == "cheap_a"
    text = format_trace(design, trace)
    assert qid in text and "decision cheap_a" in text


def test_train_exports_a_bundle_equal_to_a_re_export(run_dir, tmp_path):
    from hieramas_gnn.bundle import load_chooser

    main(["export", "--run", str(run_dir), "--out", str(tmp_path / "b")])
    a, meta_a = load_chooser(run_dir / "policy")
    b, meta_b = load_chooser(tmp_path / "b")
    assert meta_a.choice == meta_b.choice and meta_a.choice["route"] in ("classifier", "random")
    qs = ["what is 2 + 2?", "what is 7 * 6?"]
    assert a.designs(qs) == b.designs(qs)


def test_run_with_a_missing_bundle_fails_with_exit_2(tmp_path, capsys):
    code = main(["run", "--policy", str(tmp_path), "--task", "synthetic", "--question-id", "x"])
    assert code == 2 and "not a policy bundle" in capsys.readouterr().err


def test_a_design_answered_without_a_decision_call_says_so():
    from hieramas_gnn.commands.run import format_trace
    from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
    from hieramas_gnn.mas.trace import CallTrace, Trace

    design = Design(("solver",), (Mixture(("a", "b", "c"), PLURALITY),), (), "c", "all")
    calls = [CallTrace(m, "single", "single", 10, 5, 1e-6, 1.0, False) for m in "abc"]
    trace = Trace(task="t", question_id="q", method="design", answer="A", correct=True, calls=calls)
    text = format_trace(design, trace)
    assert "no decision call" in text and "decision c:" not in text
    trace.calls.append(CallTrace("c", "decision", "decision", 10, 5, 1e-6, 1.0, False))
    assert "decision c: answer='A'" in format_trace(design, trace)
