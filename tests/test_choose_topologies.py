"""The choice function draws its candidate DAGs from the family stage 1 trained the mixtures on:
`parallel` gives the empty DAG only (what was trained is what is chosen), `random` connected DAGs."""

from __future__ import annotations

import pytest

from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries


def _chooser(topologies: str, route: str = "random") -> DesignChooser:
    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, allow_skip=False)
    return DesignChooser(policy, builder, ChoiceSettings(route, "m0", n_candidates=4, topologies=topologies))


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
    settings = ChoiceSettings("classifier", "m0", topologies="parallel")
    assert ChoiceSettings.from_dict(settings.to_dict()) == settings
    old = {k: v for k, v in settings.to_dict().items() if k != "topologies"}
    assert ChoiceSettings.from_dict(old).topologies == "random"
    with pytest.raises(ValueError, match="topologies"):
        ChoiceSettings("random", "m0", topologies="star")


def test_the_pipeline_records_the_stage1_topology_family():
    from hieramas_gnn.config import load_config
    from hieramas_gnn.train.pipeline import choice_settings

    cfg = load_config(None, ["stage1.topologies=parallel"])
    assert choice_settings(cfg, "random", "m0").topologies == "parallel"
