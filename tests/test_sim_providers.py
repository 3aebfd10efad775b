"""`register_offline_providers`: idempotent, keeps other providers, pool-defined sim models work."""

from __future__ import annotations

import asyncio

import litellm
import pytest

from hieramas_gnn.backends.providers import register_offline_providers


@pytest.fixture
def clean_map(monkeypatch):
    monkeypatch.setattr(litellm, "custom_provider_map", [])


def test_registration_is_idempotent_and_keeps_other_entries(clean_map):
    other = {"provider": "mine", "custom_handler": object()}
    litellm.custom_provider_map = [other]
    first = register_offline_providers()
    second = register_offline_providers()
    providers = [e["provider"] for e in litellm.custom_provider_map]
    assert providers.count("sim") == 1 and providers.count("replay") == 1 and "mine" in providers
    assert first["sim"] is second["sim"] and first["replay"] is second["replay"]


def test_sim_answers_through_litellm_with_call_metadata(clean_map):
    register_offline_providers()
    meta = {"task": "synthetic", "question_id": "synthetic/logic/2/0", "role": "Solver",
            "position": "proposer", "context_answers": [], "sample_index": 0}
    resp = asyncio.run(litellm.acompletion(model="sim/gpt-4o", messages=[{"role": "user", "content": "q"}],
                                           metadata={"hieramas": meta}, sim_model=None))
    assert "The answer is" in resp.choices[0].message.content
    assert resp.usage.completion_tokens > 0


def test_pool_defined_sim_models_are_registered(clean_map, tmp_path):
    from hieramas_gnn.llm.pool import load_pool

    path = tmp_path / "p.yaml"
    path.write_text("name: p\nmodels:\n  - name: strong\n    litellm_model: sim/strong-x\n"
                    "    input_cost_per_token: 1.0e-6\n    output_cost_per_token: 1.0e-6\n"
                    "    extra: {litellm_params: {sim_model: {ability: {default: 4.0}, role_skill: {Solver: 1.0}}}}\n")
    handlers = register_offline_providers(load_pool(path))
    spec = handlers["sim"].backend_for({"seed": 3, "latency": "off", "fixed_latency_ms": 50.0,
                                      "behaviour": None}).spec("strong-x")  # every simulator knows it
    assert spec.ability == {"default": 4.0} and spec.role_skill == {"Solver": 1.0}


def test_shipped_sim_pool_runs_through_the_client(clean_map):
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.llm.types import LLMRequest

    pool = load_pool("sim")
    assert 6 <= len(pool) <= 8
    client = LLMClient(pool, backend={"sim": {"latency": "off"}})
    meta = {"task": "synthetic", "question_id": "synthetic/units/2/1", "role": "Solver",
            "position": "proposer", "context_answers": []}

    async def run_all():
        return await asyncio.gather(*[client.complete(LLMRequest(
            model=m, messages=({"role": "user", "content": "q"},), metadata=meta)) for m in pool.names])

    recs = asyncio.run(run_all())
    assert all(r.text and r.cost_usd > 0 for r in recs)


def test_registering_again_leaves_the_map_of_calls_in_flight_alone(clean_map):
    from hieramas_gnn.llm.pool import load_pool

    register_offline_providers()
    before = litellm.custom_provider_map
    entries = list(before)
    register_offline_providers(load_pool("sim"))
    assert litellm.custom_provider_map is before and before == entries


def test_client_registers_its_offline_providers_before_any_call(clean_map):
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool

    LLMClient(load_pool("sim"))
    assert [e["provider"] for e in litellm.custom_provider_map].count("sim") == 1


def test_many_concurrent_first_calls_through_two_clients_all_succeed(clean_map):
    """Stress for E6's unreproduced first-step failures: a fresh map, two clients registering
    the same providers, 96 concurrent first calls (no retries allowed) over every pool model."""
    from hieramas_gnn.llm.client import ClientConfig, LLMClient
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.llm.types import LLMRequest

    pool = load_pool("sim")
    clients = [LLMClient(pool, config=ClientConfig(max_retries=0, max_concurrency=64),
                         backend={"sim": {"latency": "off"}})
               for _ in range(2)]

    async def one(i):
        meta = {"task": "synthetic", "question_id": f"synthetic/logic/2/{i % 12}", "role": "Solver",
                "position": "proposer", "context_answers": []}
        return await clients[i % 2].complete(LLMRequest(
            model=pool.names[i % len(pool.names)], messages=({"role": "user", "content": f"q{i}"},),
            metadata=meta))

    async def run_all():
        return await asyncio.gather(*(one(i) for i in range(96)), return_exceptions=True)

    results = asyncio.run(run_all())
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sum(c.stats.attempts for c in clients) == 96


def test_a_client_of_a_sim_pool_loads_the_figures_before_its_first_call(clean_map):
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool

    LLMClient(load_pool("sim"))
    handler = next(e["custom_handler"] for e in litellm.custom_provider_map if e["provider"] == "sim")
    loaded = vars(handler.sim.figures)  # cached_property values live in the instance dict
    assert {"catalogue", "_items", "wrong"} <= set(loaded)


def test_registering_with_a_sim_pool_warms_litellm_for_users(clean_map):
    from hieramas_gnn.llm.pool import load_pool

    handlers = register_offline_providers(load_pool("sim"))
    assert handlers["sim"].warmed  # one warm-up call went through litellm (its first-call work is done)
