"""The rollout cache key does not depend on the order a request's dicts were built in: the same
params or metadata in another order are the same key (a different key would be a silent cache
miss and a re-paid call)."""

from __future__ import annotations

import hashlib

from helpers.llm import request

from hieramas_gnn.llm.cache import canonical_json, canonical_request, request_key


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


def test_the_canonical_request_is_a_stored_format():
    """Keys of existing caches are sha256 of exactly this body: renaming a field would make every
    cached rollout a miss (and re-pay it)."""
    req = request(params={"top_p": 0.9}, sample_index=2, prompt_version="v1", max_tokens=64, temperature=0.5,
                  metadata={"question_id": "q1"})
    assert canonical_request(req, "openai/m") == {
        "model": "openai/m", "messages": [{"role": "user", "content": "What is 2+2?"}], "temperature": 0.5,
        "max_tokens": 64, "params": {"top_p": 0.9}, "sample_index": 2, "prompt_version": "v1"}
    assert canonical_request(req, "sim/m", {"seed": 1}) == {
        **canonical_request(req, "openai/m"), "model": "sim/m", "metadata": {"question_id": "q1"},
        "provider_params": {"seed": 1}}
    body = canonical_json(canonical_request(req, "openai/m"))
    assert request_key(req, "openai/m") == hashlib.sha256(body.encode()).hexdigest()
    assert body == ('{"max_tokens":64,"messages":[{"content":"What is 2+2?","role":"user"}],"model":"openai/m",'
                    '"params":{"top_p":0.9},"prompt_version":"v1","sample_index":2,"temperature":0.5}')


def test_an_offline_model_name_with_slashes_still_keys_on_its_metadata():
    a, b = request(metadata={"question_id": "q1"}), request(metadata={"question_id": "q2"})
    assert request_key(a, "replay/org/model") != request_key(b, "replay/org/model")
