"""`hieramas train` as one pipeline, and the one design-choice function behind eval, run and serve.

Tiny runs on the synthetic task with a planted fake client (the same rule as test_train_stage1):
both topology routes produce bundles; for the same bundle and question `eval`, `run` and `serve`
choose the identical design; the `edges` route trains the edge head; the `classifier` route never
reads it.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from collections import Counter

from hieramas_gnn.commands.train import train_from_config
from hieramas_gnn.bundle import load_chooser
from hieramas_gnn.mas.testing import FakeClient
from tests.test_train_stage1 import _cfg, _reply


def _voting_reply(request):
    """The planted rule of test_train_stage1, except that the decision call returns the plurality
    of the answers it reads: which roles are sinks (the DAG) then changes the final answer."""
    from hieramas_gnn.tasks import get_task

    meta = request.metadata
    read = [a for a in meta.get("context_answers") or [] if a is not None]
    if meta.get("position") == "decision" and read:
        q = get_task("synthetic").get(meta["question_id"])
        return get_task("synthetic").render_answer(Counter(read).most_common(1)[0][0], q)
    return _reply(request)


def _client():
    return FakeClient(reply=_voting_reply)

ROUTE_ARGS = ("task.train_size=12", "topology.n_candidates=4", "topology.classifier.epochs=3", "topology.classifier.min_spread=0.0",
              "topology.edges.steps=3", "topology.edges.batch_size=3", "topology.edges.val_every=1",
              "topology.edges.checkpoint_every=1", "credit.baseline=moving_average")


@pytest.fixture(scope="module", params=["classifier", "edges"])
def trained(request, tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp(request.param), f"topology.method={request.param}", *ROUTE_ARGS)
    return train_from_config(cfg, client=_client()), cfg


def _questions(n: int = 3):
    from hieramas_gnn.tasks import get_task

    return get_task("synthetic").load(None, "test", limit=40)[-n:]


def test_train_produces_a_bundle_recording_the_trained_route(trained):
    result, cfg = trained
    chooser, meta = load_chooser(result.bundle)
    assert meta.choice["route"] == cfg.topology.method == result.topology.route
    assert (cfg.run.dir / "topology.json").exists() and (cfg.run.dir / "best.pt").exists()


def test_eval_run_and_serve_choose_the_identical_design(trained):
    from hieramas_gnn.commands.eval import policy_rule
    from hieramas_gnn.commands.run import run_policy
    from hieramas_gnn import Policy
    from hieramas_gnn.serve.app import recommend
    from hieramas_gnn.mas.design import Design

    result, _ = trained
    questions = _questions()
    args = argparse.Namespace(policy=str(result.bundle), pool=None, embed_cache=None)
    rule, _pool = policy_rule(args, None)
    by_eval = rule(questions)  # one batch of several queries
    served = Policy.load(result.bundle, cache=None)
    for q, design in zip(questions, by_eval):
        by_run, _trace = run_policy(str(result.bundle), "synthetic", q.id, _client())
        by_serve = Design.from_dict(recommend(served, {"question": q.text, "meta": q.meta})["design"])
        assert by_run == design == by_serve == served.design(q.text)
    assert by_eval == result.chooser.designs(questions)  # the in-memory policy chose the same


def test_a_reloaded_bundle_chooses_what_training_validated(trained):
    result, _ = trained
    fresh, _ = load_chooser(result.bundle)
    qs = _questions(5)
    assert fresh.designs(qs) == result.chooser.designs(qs)
    assert fresh.designs(list(reversed(qs))) == list(reversed(fresh.designs(qs)))  # order-free


def test_rerunning_a_finished_pipeline_pays_nothing_and_changes_nothing(trained):
    result, cfg = trained
    client = _client()
    again = train_from_config(cfg, client=client)
    qs = _questions(4)
    assert again.chooser.designs(qs) == result.chooser.designs(qs)
    assert again.topology == result.topology


def test_the_edges_route_gives_the_edge_head_non_zero_gradients(tmp_path):
    from hieramas_gnn.policy.choose import ChoiceSettings
    from hieramas_gnn.train.edges import EdgesTrainer
    from hieramas_gnn.build import build_training

    cfg = _cfg(tmp_path, "topology.method=edges", *ROUTE_ARGS)
    setup = build_training(cfg, client=_client())
    trainer = EdgesTrainer(cfg.topology.edges, cfg.reward, setup, ChoiceSettings(route="edges", decision="cheap_a"), 0, tmp_path)
    before = [p.detach().clone() for p in setup.policy.edge_head.parameters()]
    others = {k: v.detach().clone() for k, v in setup.policy.state_dict().items() if not k.startswith("edge_head.")}
    trainer.train_step()
    grads = [p.grad for p in setup.policy.edge_head.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, setup.policy.edge_head.parameters()))
    after = setup.policy.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in others.items())  # mixtures and encoder frozen


def test_a_classifier_bundle_never_reads_the_edge_head(trained, monkeypatch):
    result, cfg = trained
    if cfg.topology.method != "classifier":
        pytest.skip("classifier route only")
    chooser, _ = load_chooser(result.bundle)

    def boom(*args, **kwargs):
        raise AssertionError("the edge head was read")

    monkeypatch.setattr(chooser.policy.edge_head, "forward", boom)
    assert len(chooser.designs(_questions(3))) == 3
    assert len(chooser.with_route("random").designs(_questions(2))) == 2
    with pytest.raises(AssertionError, match="edge head"):
        chooser.with_route("edges").designs(_questions(1))  # the check itself can fail


def test_an_untrained_topology_head_is_recorded_as_route_random(tmp_path, monkeypatch):
    from hieramas_gnn.train import topology_classifier

    def nothing_informative(*args, **kwargs):
        return topology_classifier.ClassifierResult(float("nan"), -1, [], 0, 0), 0

    monkeypatch.setattr(topology_classifier, "fit_classifier", nothing_informative)
    result = train_from_config(_cfg(tmp_path, *ROUTE_ARGS), client=_client())
    _, meta = load_chooser(result.bundle)
    assert result.topology.trained is False and meta.choice["route"] == "random"


# --------------------------------------------------------------- kill during stage 2, then resume


def _sim_run(out, monkeypatch=None):
    """The quick demo config (sim pool, real client and rollout cache) at the smallest sizes."""
    from hieramas_gnn.eval.experiment import DEMO_QUICK, seed_config
    from hieramas_gnn.build import ClientSettings, load_models, make_client

    cfg = seed_config(DEMO_QUICK, out, 0, ["task.train_size=8", "task.val_size=4", "task.test_size=0",
                                           "stage1.steps=2", "stage1.val_every=1", "tracking.wandb=disabled",
                                           "topology.classifier.min_spread=0.0"])
    return cfg, make_client(ClientSettings.from_config(cfg), load_models(cfg)[0])


def _weights(bundle):
    from safetensors.torch import load_file

    return load_file(str(bundle / "policy.safetensors"))


def test_a_run_killed_during_stage_2_resumes_to_the_same_bundle_paying_nothing_twice(tmp_path, monkeypatch):
    from hieramas_gnn.train import topology_classifier
    from hieramas_gnn.train.pipeline import train_pipeline

    cfg, client = _sim_run(tmp_path / "whole")
    whole = train_pipeline(cfg, client=client)
    paid_whole = client.stats.calls

    cfg, client = _sim_run(tmp_path / "killed")
    original, calls = topology_classifier.generate_data, []

    def killed(*args, **kwargs):  # the kill lands after stage 2 paid for its training rollouts
        calls.append(1)
        if len(calls) == 2:  # the validation queries' candidates
            raise KeyboardInterrupt("killed during stage 2")
        return original(*args, **kwargs)

    monkeypatch.setattr(topology_classifier, "generate_data", killed)
    with pytest.raises(KeyboardInterrupt):
        train_pipeline(cfg, client=client)
    paid_before_kill = client.stats.calls
    assert not (cfg.run.dir / "policy").exists() and 0 < paid_before_kill < paid_whole
    monkeypatch.setattr(topology_classifier, "generate_data", original)
    cfg, client = _sim_run(tmp_path / "killed")
    resumed = train_pipeline(cfg, client=client)
    assert client.stats.cache_hits > 0
    assert paid_before_kill + client.stats.calls == paid_whole  # the rest paid once, nothing twice
    a, b = _weights(whole.bundle), _weights(resumed.bundle)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _, meta_a = load_chooser(whole.bundle)
    _, meta_b = load_chooser(resumed.bundle)
    assert meta_a.choice == meta_b.choice


def test_resuming_a_run_folder_with_another_config_is_refused(trained):
    from hieramas_gnn.config import load_config
    from hieramas_gnn.errors import UserError

    result, cfg = trained
    other = load_config(cfg.run.dir / "config.yaml", [f"run.out_dir={cfg.run.out_dir}", "stage1.lr=0.5"])
    with pytest.raises(UserError, match="stage1.lr"):
        train_from_config(other, client=_client())
