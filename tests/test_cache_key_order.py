"""The rollout cache key does not depend on the order a request's dicts were built in: the same
params or metadata in another order are the same key (a different key would be a silent cache
miss and a re-paid call)."""

from __future__ import annotations

from helpers.llm import request

from hieramas_gnn.llm.cache import canonical_json, request_key


def test_canonical_json_sorts_keys_at_every_level_without_whitespace():
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == '{"a":{"c":"é","d":[1,2]},"b":1}'
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})


def test_params_in_another_order_give_the_same_key():
    a = request(params={"top_p": 0.9, "stop": ["\n"], "seed": 3})
    b = request(params={"seed": 3, "stop": ["\n"], "top_p": 0.9})
    assert list(a.params) != list(b.params)
    assert request_key(a, "openai/m") == request_key(b, "openai/m")


def test_offline_metadata_in_another_order_gives_the_same_key():
    a = request(metadata={"question_id": "q1", "role": "solver", "task": "t"})
    b = request(metadata={"task": "t", "role": "solver", "question_id": "q1"})
    assert request_key(a, "sim/m") == request_key(b, "sim/m")
    assert request_key(a, "sim/m") != request_key(request(metadata={"task": "t", "role": "verifier",
                                                                     "question_id": "q1"}), "sim/m")


def test_provider_params_in_another_order_give_the_same_key():
    req = request(metadata={"question_id": "q1"})
    assert (request_key(req, "sim/m", {"sim_model": "x", "seed": 1})
            == request_key(req, "sim/m", {"seed": 1, "sim_model": "x"}))
