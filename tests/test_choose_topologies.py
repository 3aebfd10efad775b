"""The choice function draws its candidate DAGs from the family stage 1 trained the mixtures on:
`parallel` gives the empty DAG only (what was trained is what is chosen), `random` connected DAGs."""

from __future__ import annotations

import pytest

from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries


def _chooser(topologies: str, route: str = "random") -> DesignChooser:
    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, allow_skip=False)
    return DesignChooser(policy, builder, ChoiceSettings(route=route, decision="m0", n_candidates=4, topologies=topologies))


def test_parallel_candidates_are_the_empty_dag_only():
    chooser = _chooser("parallel")
    for q in toy_queries(5):
        assert chooser.candidates(q) == ([()], 0)
        assert chooser.design(q).edges == ()


def test_random_candidates_have_edges():
    chooser = _chooser("random")
    designs = chooser.designs(toy_queries(5))
    assert all(d.edges for d in designs)  # connected DAGs over 3 roles


def test_settings_round_trip_and_old_manifests_read_as_random():
    settings = ChoiceSettings(route="classifier", decision="m0", topologies="parallel")
    assert ChoiceSettings.from_dict(settings.to_dict()) == settings
    old = {k: v for k, v in settings.to_dict().items() if k != "topologies"}
    assert ChoiceSettings.from_dict(old).topologies == "random"
    with pytest.raises(ValueError, match="topologies"):
        ChoiceSettings(route="random", decision="m0", topologies="star")


def test_the_pipeline_records_the_stage1_topology_family():
    from hieramas_gnn.config import load_config
    from hieramas_gnn.build import choice_settings

    cfg = load_config(None, ["stage1.topologies=parallel"])
    assert choice_settings(cfg, "random", "m0").topologies == "parallel"


def test_a_parallel_run_skips_stage2_and_ships_the_empty_dag(tmp_path):
    from hieramas_gnn.commands.train import train_from_config
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.mas.testing import FakeClient
    from tests.test_train_stage1 import _cfg, _reply

    cfg = _cfg(tmp_path, "stage1.topologies=parallel", "topology.n_candidates=4", "topology.classifier.epochs=2")
    result = train_from_config(cfg, client=FakeClient(reply=_reply))
    assert result.topology.rollouts == 0 and result.topology.route == "random"
    assert "parallel" in result.topology.summary["skipped"]
    chooser, meta = load_chooser(result.bundle)
    assert meta.choice["topologies"] == "parallel"
    assert all(d.edges == () for d in chooser.designs([q.text for q in result.setup.val]))

