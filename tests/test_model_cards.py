"""Replay pool profiles (`backends/fit/model_cards.py`): informative, and free of benchmark results."""

from __future__ import annotations

import glob

import yaml

from hieramas_gnn.backends.fit.model_cards import model_card, size_class


def _pool_models():
    return [m for path in sorted(glob.glob("data/pools/replay-*.yaml")) for m in yaml.safe_load(open(path))["models"]]


def test_every_replay_model_has_a_known_provider():
    unknown = [m["name"] for m in _pool_models() if "provider not known" in m["profile"]]
    assert unknown == []


def test_replay_profiles_differ_by_more_than_the_model_name():
    bodies = {m["profile"].split(":", 1)[1] for m in _pool_models()}
    assert len(bodies) >= 25


def test_profiles_carry_no_accuracy_numbers():
    assert not any("%" in m["profile"] or "accuracy" in m["profile"].lower() for m in _pool_models())


def test_size_class_reads_the_parameter_count_from_the_name():
    assert size_class("Qwen2.5-7B-Instruct") == "small (<= 10B)"
    assert size_class("Yi-1.5-34B-Chat") == "mid-size (11-40B)"
    assert size_class("Meta-Llama-3.1-70B-Instruct@hyperbolic") == "large (> 40B)"
    assert size_class("gpt-4o-2024-08-06") is None


def test_cards_match_through_provider_prefixes_and_hosting_suffixes():
    assert model_card("openai_gpt-4o-2024-05-13").split(": ", 1)[1] == model_card("gpt-4o-2024-05-13").split(": ", 1)[1]
    assert "Google" in model_card("gemma-2-27b-it@together")


def test_a_card_that_states_its_parameters_gets_no_size_class_from_the_name():
    assert "size class" not in model_card("Mixtral-8x7B-Instruct-v0.1")


def test_an_unknown_model_gets_what_its_name_says():
    assert model_card("acme-13b") == "acme-13b: provider not known to this project; size class mid-size (11-40B)."
