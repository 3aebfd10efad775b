"""The client's `backend` settings: the sim/replay settings travel with each call and key its cache entry."""

from __future__ import annotations

import asyncio

import pytest
from helpers.llm import faults_pool, request

from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.llm.types import BackendSettings, LLMRequest, ReplaySettings, SimSettings

META = {"task": "synthetic", "question_id": "synthetic/logic/2/0", "role": "Solver",
        "position": "proposer", "context_answers": []}
SIM_POOL = load_pool("sim")


def _sim_request() -> LLMRequest:
    return LLMRequest(model=SIM_POOL.names[0], messages=({"role": "user", "content": "q"},), metadata=META)


def _key(pool, req, backend: BackendSettings) -> str:
    return LLMClient(pool, backend=backend).request_key(req)


@pytest.mark.parametrize("change", [
    {"seed": 1}, {"latency": "off"}, {"latency": "fixed"}, {"fixed_latency_ms": 10.0}, {"behaviour": "b.json"}])
def test_changing_any_sim_setting_changes_the_cache_key_of_sim_calls(change):
    base = _key(SIM_POOL, _sim_request(), BackendSettings())
    assert _key(SIM_POOL, _sim_request(), BackendSettings(sim=SimSettings(**change))) != base


def test_the_replay_seed_is_part_of_the_cache_key_of_replay_calls():
    pool = load_pool("replay-gsm8k")
    req = LLMRequest(model=pool.names[0], messages=({"role": "user", "content": "q"},), metadata=META)
    assert _key(pool, req, BackendSettings(replay=ReplaySettings(seed=3))) != _key(pool, req, BackendSettings())


def test_sim_settings_do_not_touch_the_key_of_replay_or_real_calls():
    pool = load_pool("replay-gsm8k")
    req = LLMRequest(model=pool.names[0], messages=({"role": "user", "content": "q"},), metadata=META)
    other = BackendSettings(sim=SimSettings(seed=9, latency="off"))
    assert _key(pool, req, other) == _key(pool, req, BackendSettings())
    faults = faults_pool("succeed")
    assert _key(faults, request(), other) == _key(faults, request(), BackendSettings())


def test_real_providers_never_receive_the_backend_settings(monkeypatch):
    import litellm

    seen = []

    async def fake_acompletion(**kwargs):
        seen.append(kwargs)
        return litellm.ModelResponse(model="gpt-4o-mini", choices=[{"message": {"role": "assistant", "content": "4"}}],
                                     usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})

    monkeypatch.setattr(litellm, "acompletion", fake_acompletion)
    from hieramas_gnn.llm.pool import pool_from_dict

    pool = pool_from_dict({"name": "real", "models": [{"name": "m", "litellm_model": "openai/gpt-4o-mini"}]},
                          where="test", default_name="real")
    client = LLMClient(pool, backend=BackendSettings(sim=SimSettings(latency="off")))
    asyncio.run(client.complete(LLMRequest(model="m", messages=({"role": "user", "content": "2+2?"},))))
    assert len(seen) == 1 and not any("hieramas_backend" in k or "sim" in k for k in seen[0])


def test_the_client_sends_its_settings_to_the_sim_provider(tmp_path):
    fast = LLMClient(SIM_POOL, RolloutCache(tmp_path / "a.sqlite", "rw"),
                     backend=BackendSettings(sim=SimSettings(latency="fixed", fixed_latency_ms=300.0)))
    rec = asyncio.run(fast.complete(_sim_request()))
    assert rec.latency_ms >= 300.0  # the fixed latency was awaited: the provider used these settings


def test_the_client_takes_backend_settings_as_a_mapping():
    client = LLMClient(SIM_POOL, backend={"sim": {"latency": "off", "seed": 4}})
    assert client.backend == BackendSettings(sim=SimSettings(seed=4, latency="off"))


@pytest.mark.parametrize("backend,field", [
    ({"sim": {"latency": "slow"}}, "latency"), ({"sim": {"latency": False}}, "latency"),
    ({"sim": {"speed": 1}}, "backend.sim"), ({"simulator": {}}, "simulator"),
    ({"replay": {"seed": "x"}}, "replay.seed"), ({"sim": {"fixed_latency_ms": -1}}, "fixed_latency_ms")])
def test_bad_backend_settings_name_the_field(backend, field):
    with pytest.raises(UserError, match=field):
        LLMClient(SIM_POOL, backend=backend)


def test_the_behaviour_parameters_in_use_are_part_of_the_sim_key(tmp_path):
    """A refit behaviour file (same path, new content) must not reuse answers cached under the old
    parameters: the key carries a hash of the file."""
    import json

    from hieramas_gnn.llm.types import BackendSettings, SimSettings, _BEHAVIOUR_HASHES
    from hieramas_gnn.paths import data_dir

    path = tmp_path / "behaviour.json"
    path.write_text((data_dir() / "sim" / "behaviour.json").read_text())
    before = BackendSettings(sim=SimSettings(behaviour=str(path))).for_provider("sim")["model_version"]
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "_refit": 1}))
    _BEHAVIOUR_HASHES.clear()
    after = BackendSettings(sim=SimSettings(behaviour=str(path))).for_provider("sim")["model_version"]
    assert before != after
    default = BackendSettings().for_provider("sim")["model_version"]
    assert default != after and default.startswith("2:")


def test_a_bundle_replays_with_the_wrong_answer_rule_and_seed_it_was_trained_with():
    """`hieramas eval/run/serve` on a bundle trained with `backend.replay.wrong_answers: shared`
    replay it so (votes over recorded outcomes score differently under `distinct`); a flag
    overrides the seed only."""
    from types import SimpleNamespace

    from hieramas_gnn.bundle_trust import recorded_backend
    from hieramas_gnn.commands.common import backend_settings

    meta = SimpleNamespace(hyperparameters={"backend": {"replay": {"seed": 3, "wrong_answers": "shared"},
                                                        "sim": {"seed": 5}}})
    recorded = recorded_backend(meta)
    assert recorded.replay == ReplaySettings(seed=3, wrong_answers="shared") and recorded.sim.seed == 5
    got = backend_settings(SimpleNamespace(sim_seed=None, sim_latency=None), recorded)
    assert got.replay == ReplaySettings(seed=3, wrong_answers="shared")
    assert backend_settings(SimpleNamespace(sim_seed=9, sim_latency=None), recorded).replay == \
        ReplaySettings(seed=9, wrong_answers="shared")
    bad = SimpleNamespace(hyperparameters={"backend": {"replay": {"wrong_answers": "everyone-right"}}})
    assert recorded_backend(bad) == BackendSettings()  # an unknown rule: the defaults, as for any bad entry
