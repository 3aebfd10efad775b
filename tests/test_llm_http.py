"""The real HTTP path: litellm's `openai/` provider against a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import os

import pytest
from helpers.fake_openai_server import FakeOpenAIServer

from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import pool_from_dict
from hieramas_gnn.llm.types import LLMCallError, LLMRequest

SECRET = "sk-test-NEVER-STORE-4f1c9e"


@pytest.fixture(scope="module", autouse=True)
def warm_litellm():
    """litellm's first openai/ call imports the SDK (seconds on a loaded machine): do it once."""
    from helpers.llm import warm_up

    with FakeOpenAIServer() as srv:
        pool = pool_from_dict({"models": [{"name": "w", "litellm_model": "openai/w",
                                           "input_cost_per_token": 0, "output_cost_per_token": 0,
                                           "extra": {"api_base": srv.base_url,
                                                     "api_key_env": "HIERAMAS_WARM_KEY"}}]},
                              where="pool warm", default_name="w")
        os.environ["HIERAMAS_WARM_KEY"] = "sk-warm-up-only"
        try:
            warm_up(pool, "w")
        finally:
            del os.environ["HIERAMAS_WARM_KEY"]


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        srv.script.retry_after_s = 0.2
        srv.script.hang_s = 5.0
        yield srv


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HIERAMAS_FAKE_KEY", SECRET)
    pool = pool_from_dict({"models": [{
        "name": "local", "litellm_model": "openai/local-model",
        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
        "extra": {"api_base": server.base_url, "api_key_env": "HIERAMAS_FAKE_KEY"}}]},
        where="pool test", default_name="local")
    config = ClientConfig(backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=1.0, max_retries=4)
    return LLMClient(pool, RolloutCache(tmp_path / "cache.sqlite"), config)


def _req(text="hello there", **kw):
    return LLMRequest("local", ({"role": "user", "content": text},), **kw)


def test_openai_http_path_returns_text_usage_and_cost(client, server):
    rec = asyncio.run(client.complete(_req(max_tokens=20)))
    assert rec.text == "echo: hello there"
    assert (rec.prompt_tokens, rec.completion_tokens) == (2, 3)
    assert rec.cost_usd == pytest.approx(2e-6 + 3 * 2e-6)
    assert server.count == 1
    assert server.requests[0].body["model"] == "local-model"
    assert server.requests[0].body["max_tokens"] == 20


def test_second_identical_http_run_sends_nothing(client, server):
    asyncio.run(client.complete(_req()))
    assert asyncio.run(client.complete(_req())).cache_hit
    assert server.count == 1


def test_http_429_is_retried_after_retry_after(client, server):
    server.push("429")
    delays = []
    real_sleep = asyncio.sleep

    async def recording_sleep(s):
        delays.append(s)
        await real_sleep(s)

    client._sleep = recording_sleep
    rec = asyncio.run(client.complete(_req()))
    assert rec.text == "echo: hello there" and server.count == 2
    assert delays and delays[0] >= 0.2


def test_http_500_malformed_and_hang_are_retried_and_not_cached(client, server):
    server.push("500", "malformed", "hang")
    rec = asyncio.run(client.complete(_req()))
    assert rec.text == "echo: hello there"
    assert [r.action for r in server.requests] == ["500", "malformed", "hang", "ok"]
    assert len(client.cache) == 1 and client.stats.retries == 3


def test_http_failure_after_all_retries_stores_nothing(client, server):
    server.push(*["500"] * 5)
    with pytest.raises(LLMCallError, match="after 5 attempts"):
        asyncio.run(client.complete(_req()))
    assert server.count == 5 and len(client.cache) == 0


def test_key_is_sent_in_the_header_and_stored_nowhere(client, server, tmp_path):
    asyncio.run(client.complete(_req(sample_index=2, metadata={"question_id": "q1"})))
    client.cache.export_jsonl(tmp_path / "export.jsonl")
    client.cache.close()
    seen = server.requests[0]
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET.encode() not in seen.raw
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite"))
    assert stored and SECRET.encode() not in stored
    assert SECRET not in (tmp_path / "export.jsonl").read_text()


def test_sample_index_and_metadata_are_not_sent_to_the_server(client, server):
    asyncio.run(client.complete(_req(sample_index=0)))
    asyncio.run(client.complete(_req(sample_index=1, metadata={"question_id": "q1"})))
    first, second = (r.body for r in server.requests)
    assert first == second  # two samples, two cache entries, the same body on the wire
    assert "sample_index" not in str(second) and "hieramas" not in str(second)
    assert len(client.cache) == 2
