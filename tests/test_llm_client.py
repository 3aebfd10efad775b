"""LLMClient over the `faults/` provider: cache, retries, budget, replay, limits, metadata."""

from __future__ import annotations

import asyncio

import pytest
from helpers.llm import PRICE_IN, PRICE_OUT, faults_pool, request, warm_up

from hieramas_gnn.errors import UserError
from hieramas_gnn.llm import faults
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.types import BudgetExceeded, CacheMiss, LLMCallError

FAST = dict(backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=5.0)


@pytest.fixture(scope="module", autouse=True)
def warm_litellm():
    faults.register(faults.FaultProvider())
    warm_up(faults_pool("succeed"), "succeed")


@pytest.fixture
def provider():
    """A fresh faults provider (its counters start at 0) registered for this test."""
    handler = faults.register(faults.FaultProvider(fail_times=2, retry_after_s=0.01, hang_s=5.0,
                                                   delay_s=0.05))
    yield handler
    faults.register(faults.FaultProvider())


def _client(tmp_path, *modes, mode="rw", sleep=asyncio.sleep, **cfg):
    cache = RolloutCache(tmp_path / "cache.sqlite", mode)
    return LLMClient(faults_pool(*(modes or ("succeed",))), cache, ClientConfig(**{**FAST, **cfg}),
                     sleep=sleep)


def _run(coro):
    return asyncio.run(coro)


async def _many(client, reqs):
    return await asyncio.gather(*(client.complete(r) for r in reqs))


def test_a_miss_calls_the_provider_and_returns_usage_cost_latency(tmp_path, provider):
    rec = _run(_client(tmp_path).complete(request(max_tokens=16)))
    assert rec.text == "echo: What is 2+2?" and not rec.cache_hit
    assert (rec.prompt_tokens, rec.completion_tokens) == (3, 4)
    assert rec.cost_usd == pytest.approx(3 * PRICE_IN + 4 * PRICE_OUT)
    assert rec.latency_ms > 0 and provider.calls == 1


def test_second_identical_run_makes_zero_provider_calls(tmp_path, provider):
    reqs = [request(text=f"q{i}", sample_index=s) for i in range(5) for s in range(2)]
    first = _run(_many(_client(tmp_path), reqs))
    calls_after_first = provider.calls
    again = _client(tmp_path)
    second = _run(_many(again, reqs))
    assert calls_after_first == 10 and provider.calls == 10
    assert all(r.cache_hit for r in second) and again.stats.calls == 0
    assert [r.text for r in second] == [r.text for r in first]


def test_cache_hit_keeps_the_original_cost_but_spends_nothing(tmp_path, provider):
    first = _run(_client(tmp_path).complete(request()))
    again = _client(tmp_path)
    hit = _run(again.complete(request()))
    assert hit.cost_usd == first.cost_usd and again.stats.spent_usd == 0.0


@pytest.mark.parametrize("mode", ["ratelimit", "error500", "timeout", "malformed"])
def test_injected_faults_are_retried_then_succeed(tmp_path, provider, mode):
    client = _client(tmp_path, mode, timeout_s=0.2)
    rec = _run(client.complete(request(mode)))
    assert rec.text.startswith("echo:")
    assert provider.calls == 3 and client.stats.retries == 2


@pytest.mark.parametrize("mode", ["ratelimit", "error500", "malformed"])
def test_failed_calls_are_never_cached(tmp_path, provider, mode):
    client = _client(tmp_path, mode, max_retries=1)  # fails twice, gives up after 2 attempts
    with pytest.raises(LLMCallError, match="after 2 attempts"):
        _run(client.complete(request(mode)))
    assert len(client.cache) == 0 and client.stats.failures == 1


def test_a_later_call_after_a_failure_succeeds_and_is_cached_once(tmp_path, provider):
    client = _client(tmp_path, "error500", max_retries=0)
    with pytest.raises(LLMCallError):
        _run(client.complete(request("error500")))
    with pytest.raises(LLMCallError):
        _run(client.complete(request("error500")))
    rec = _run(client.complete(request("error500")))
    assert not rec.cache_hit and len(client.cache) == 1


def test_retry_after_is_honoured(tmp_path, provider):
    provider.retry_after_s = 3.0
    delays = []

    async def fake_sleep(s):
        delays.append(s)

    _run(_client(tmp_path, "ratelimit", sleep=fake_sleep, backoff_max_s=0.5).complete(request("ratelimit")))
    assert len(delays) == 2 and all(d >= 3.0 for d in delays)


def test_backoff_without_retry_after_is_jittered_and_capped(tmp_path, provider):
    provider.fail_times = 4
    delays = []

    async def fake_sleep(s):
        delays.append(s)

    client = _client(tmp_path, "error500", sleep=fake_sleep, backoff_base_s=1.0, backoff_max_s=2.0)
    _run(client.complete(request("error500")))
    caps = [1.0, 2.0, 2.0, 2.0]
    assert len(delays) == 4 and all(0 <= d <= c for d, c in zip(delays, caps))


def test_a_non_retryable_error_fails_at_once(tmp_path, provider):
    client = _client(tmp_path, "nosuchmode")  # the provider answers 400 Bad Request
    with pytest.raises(LLMCallError, match="unknown mode"):
        _run(client.complete(request("nosuchmode")))
    assert client.stats.attempts == 1 and client.stats.retries == 0


def test_budget_cap_refuses_the_call_that_could_exceed_it(tmp_path, provider):
    # Each call reserves its upper bound (prompt + max_tokens); a real call costs less.
    one = _client(tmp_path).estimate_cost(request(text="a b q0", max_tokens=10))
    client = _client(tmp_path, budget_usd=2.5 * one)
    done, refused = 0, None
    for i in range(10):
        try:
            _run(client.complete(request(text=f"a b q{i}", max_tokens=10)))
            done += 1
        except BudgetExceeded as exc:
            refused = exc
            break
    assert refused is not None and "refused" in str(refused)
    assert client.stats.spent_usd <= 2.5 * one
    assert provider.calls == done  # the refused call was never made


def test_concurrent_calls_never_take_spend_past_the_cap(tmp_path, provider):
    one = _client(tmp_path, "slow").estimate_cost(request("slow", text="a b q0", max_tokens=10))
    cap = 3.5 * one
    client = _client(tmp_path, "slow", budget_usd=cap)
    reqs = [request("slow", text=f"a b q{i}", max_tokens=10) for i in range(12)]

    async def go():
        return await asyncio.gather(*(client.complete(r) for r in reqs), return_exceptions=True)

    results = _run(go())
    done = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
    assert len(done) >= 3 and len(done) < 12  # calls waited for in-flight ones, then were refused
    assert provider.calls == len(done) and client.stats.spent_usd <= cap
    assert client.stats.reserved_usd == pytest.approx(0.0)


def test_cache_hits_are_served_when_the_budget_is_spent(tmp_path, provider):
    _run(_client(tmp_path).complete(request()))
    broke = _client(tmp_path, budget_usd=0.0)
    assert _run(broke.complete(request())).cache_hit
    with pytest.raises(BudgetExceeded):
        _run(broke.complete(request(text="new question")))


def test_replay_only_raises_on_a_miss_without_calling(tmp_path, provider):
    _run(_client(tmp_path).complete(request(text="known")))
    replay = _client(tmp_path, mode="replay")
    assert _run(replay.complete(request(text="known"))).cache_hit
    with pytest.raises(CacheMiss, match="replay-only"):
        _run(replay.complete(request(text="unknown", metadata={"question_id": "q7"})))
    assert provider.calls == 1


def test_metadata_reaches_the_provider_with_sample_index_and_pool_model(tmp_path, provider):
    req = request(sample_index=3, metadata={"task": "gsm8k", "question_id": "q1", "role": "solver",
                                            "position": "proposer"})
    _run(_client(tmp_path).complete(req))
    assert provider.seen_metadata == [{"task": "gsm8k", "question_id": "q1", "role": "solver",
                                       "position": "proposer", "sample_index": 3,
                                       "pool_model": "succeed"}]


def test_identical_requests_in_flight_share_one_call(tmp_path, provider):
    client = _client(tmp_path, "slow")
    recs = _run(_many(client, [request("slow")] * 4))
    assert provider.calls == 1 and sum(not r.cache_hit for r in recs) == 1


def test_per_model_concurrency_bounds_calls_in_flight(tmp_path, provider):
    client = _client(tmp_path, "slow", per_model_concurrency=2)
    peak = 0

    async def go():
        nonlocal peak
        tasks = [asyncio.ensure_future(client.complete(request("slow", text=f"q{i}"))) for i in range(6)]
        while not all(t.done() for t in tasks):
            peak = max(peak, client.stats.attempts - provider.answers)
            await asyncio.sleep(0.005)
        return [t.result() for t in tasks]

    assert len(_run(go())) == 6
    assert peak == 2


def test_rpm_spaces_calls_to_one_model(tmp_path, provider):
    waits = []

    async def fake_sleep(s):
        waits.append(s)

    client = _client(tmp_path, sleep=fake_sleep, rpm=60)
    for i in range(3):
        _run(client.complete(request(text=f"q{i}")))
    # the fake sleep does not advance the clock, so the slots pile up: ~1 s, then ~2 s
    assert len(waits) == 2
    assert 0.5 < waits[0] <= 1.0 and 1.5 < waits[1] <= 2.0


def test_missing_api_key_env_is_a_user_error_naming_it(tmp_path, provider, monkeypatch):
    monkeypatch.delenv("HIERAMAS_TEST_KEY", raising=False)
    client = LLMClient(faults_pool("succeed", extra={"api_key_env": "HIERAMAS_TEST_KEY"}))
    with pytest.raises(UserError, match="HIERAMAS_TEST_KEY"):
        _run(client.complete(request()))
    assert provider.calls == 0


def test_unknown_pool_model_is_a_user_error(tmp_path, provider):
    with pytest.raises(UserError, match="'nope'"):
        _run(_client(tmp_path).complete(request("nope")))


def test_client_works_across_event_loops(tmp_path, provider):
    client = _client(tmp_path, per_model_concurrency=1)
    _run(client.complete(request(text="a")))
    assert _run(client.complete(request(text="b"))).text == "echo: b"


def test_cost_of_a_model_litellm_lists_comes_from_litellm(monkeypatch):
    import litellm

    from hieramas_gnn.llm.client import _cost
    from hieramas_gnn.llm.pool import pool_from_dict

    spec = pool_from_dict({"models": [{"name": "m", "litellm_model": "openai/gpt-4o-mini"}]},
                          where="t", default_name="t").get("m")
    response = litellm.ModelResponse(model="gpt-4o-mini", usage={
        "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
        choices=[{"message": {"role": "assistant", "content": "x"}}])
    expected = litellm.completion_cost(completion_response=response, model="openai/gpt-4o-mini")
    assert expected > 0 and _cost(spec, response, 1000, 100) == pytest.approx(expected)
