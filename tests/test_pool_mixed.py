"""The shipped mixed pool (`data/pools/local-plus-paid.yaml`): a local OpenAI-compatible server next
to a paid API model, run for real over HTTP (the test server stands in for both endpoints)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
from helpers.fake_openai_server import FakeOpenAIServer

from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import Pool, litellm_prices, load_pool
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import run_design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks.generic import GenericTask

LOCAL_KEY, PAID_KEY = "none", "sk-test-paid-9d2f"


@pytest.fixture
def served(monkeypatch):
    """The example pool with both models' api_base pointed at one test server (nothing else changed)."""
    monkeypatch.setenv("LOCAL_LLM_KEY", LOCAL_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", PAID_KEY)
    pool = load_pool("local-plus-paid")
    with FakeOpenAIServer() as srv:
        models = tuple(replace(m, extra={**m.extra, "api_base": srv.base_url}) for m in pool)
        yield Pool(pool.name, models), srv


def test_example_pool_prices_local_free_and_paid_from_litellm():
    pool = load_pool("local-plus-paid")
    local, paid = pool.get("local-qwen"), pool.get("gpt-4o-mini")
    assert (local.input_cost_per_token, local.output_cost_per_token) == (0.0, 0.0)
    assert local.extra["api_base"].startswith("http://localhost")
    assert paid.price_source == "litellm"
    assert (paid.input_cost_per_token, paid.output_cost_per_token) == litellm_prices("openai/gpt-4o-mini")
    assert (local.extra["rpm"], paid.extra["rpm"]) == (600, 60)


def test_a_design_mixing_local_and_paid_models_runs_over_http(served, tmp_path):
    pool, srv = served
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "What is 2 + 2?", "answer": "4"}) + "\n")
    task = GenericTask("mixed_pool_task", tmp_path / "q.jsonl", "numeric")
    question = task.load()[0]
    roleset = get_roleset("general")
    design = Design(("solver",), (Mixture(("local-qwen", "gpt-4o-mini"), "local-qwen"),), (), "gpt-4o-mini")
    client = LLMClient(pool, RolloutCache(tmp_path / "cache.sqlite"), ClientConfig(timeout_s=30, max_retries=0))
    trace = asyncio.run(run_design(design, question, task, client, roleset))

    assert not trace.failed, trace.failure_reason
    sent = sorted((r.body["model"], r.headers.get("authorization")) for r in srv.requests)
    assert sent == [("gpt-4o-mini", f"Bearer {PAID_KEY}"), ("gpt-4o-mini", f"Bearer {PAID_KEY}"),
                    ("qwen2.5-7b-instruct", f"Bearer {LOCAL_KEY}"), ("qwen2.5-7b-instruct", f"Bearer {LOCAL_KEY}")]
    # 2 proposers (one per model), the local synthesizer, the paid decision: 4 calls
    by_model: dict[str, float] = {}
    for call in trace.calls:
        by_model[call.model] = by_model.get(call.model, 0.0) + call.cost_usd
    assert by_model["local-qwen"] == 0.0
    paid = pool.get("gpt-4o-mini")
    paid_calls = [c for c in trace.calls if c.model == "gpt-4o-mini"]
    expected = sum(c.prompt_tokens * paid.input_cost_per_token + c.completion_tokens * paid.output_cost_per_token
                   for c in paid_calls)
    assert by_model["gpt-4o-mini"] == pytest.approx(expected) and expected > 0
    assert trace.cost_usd == pytest.approx(expected)


def test_per_model_rpm_paces_calls_to_that_model(served, tmp_path, monkeypatch):
    pool, srv = served
    fast = Pool(pool.name, tuple(replace(m, extra={**m.extra, "rpm": 1200}) if m.name == "local-qwen" else m
                                 for m in pool))
    client = LLMClient(fast, RolloutCache(None, "off"), ClientConfig(timeout_s=30, max_retries=0))
    clock = [1000.0]  # a pacing clock that moves only when the client sleeps: no wall-time flakiness
    import time

    from hieramas_gnn.llm import client as client_module

    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time,
                                                               perf_counter=time.perf_counter))
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)
        clock[0] += s

    client._sleep = sleep
    from hieramas_gnn.llm.types import LLMRequest

    async def three():
        for i in range(3):
            await client.complete(LLMRequest("local-qwen", ({"role": "user", "content": f"hi {i}"},)))

    asyncio.run(three())
    assert srv.count == 3
    assert waits == pytest.approx([60 / 1200, 60 / 1200])  # calls 2 and 3 wait one slot each
