"""sim/ and replay/ calls skip litellm in `LLMClient`: the same records, costs and cache contents
as the litellm path, and `litellm.completion("sim/...")` still answers for users."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import litellm
import pytest

from hieramas_gnn.llm import client as client_mod
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import Pool, load_pool, pool_from_dict
from hieramas_gnn.llm.types import LLMRequest, ProviderInputError

OFF = {"sim": {"latency": "off"}}
INLINE = {"ability": {"default": 1.5}, "role_skill": {"Solver": 0.5}}


def _meta(qid: str, **kw) -> dict:
    return {"task": "synthetic", "question_id": qid, "role": "Solver", "position": "proposer",
            "context_answers": [], **kw}


def _sim_pool() -> Pool:
    """Three models of the shipped sim pool (priced from litellm's cost map) and one inline model."""
    inline = {"name": "inline", "litellm_model": "sim/inline-x", "input_cost_per_token": 2e-6,
              "output_cost_per_token": 3e-6, "extra": {"litellm_params": {"sim_model": INLINE}}}
    extra = pool_from_dict({"name": "x", "models": [inline]}, where="test", default_name="x")
    return Pool("equiv", (*load_pool("sim").models[:3], *extra.models))


def _sim_requests(pool) -> list[LLMRequest]:
    """A fixed set: proposers over 12 questions and 4 models, 2 samples, and synthesizers
    reading context answers (the behaviour model's path)."""
    reqs = []
    for i in range(12):
        qid = f"synthetic/logic/2/{i}" if i % 2 else f"synthetic/arithmetic/1/{i}"
        for m in pool.names:
            for s in range(2):
                reqs.append(LLMRequest(model=m, messages=({"role": "user", "content": f"q{i} " * (i + 1)},),
                                       sample_index=s, metadata=_meta(qid)))
        reqs.append(LLMRequest(model=pool.names[0], messages=({"role": "user", "content": "synth"},),
                               metadata=_meta(qid, position="synthesizer", context_answers=["1", "2", None])))
    return reqs


def _run(pool, reqs, cache_path, via_litellm: bool, monkeypatch, backend=OFF):
    with monkeypatch.context() as mp:
        if via_litellm:
            mp.setattr(client_mod, "IN_PROCESS", ())  # every call through litellm.acompletion, as before
        client = LLMClient(pool, RolloutCache(cache_path, "rw"), ClientConfig(), backend=backend)

        async def all_calls():
            return await asyncio.gather(*(client.complete(r) for r in reqs))

        return asyncio.run(all_calls()), client


def _comparable(rec) -> tuple:
    return (rec.key, rec.model, rec.text, rec.prompt_tokens, rec.completion_tokens, rec.cost_usd,
            rec.cache_hit, rec.litellm_model)


def _rows(path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as con:  # everything but when and how fast
        return con.execute("SELECT key, model, text, prompt_tokens, completion_tokens, cost_usd, request "
                           "FROM records ORDER BY key").fetchall()


def test_sim_records_match_the_litellm_path(tmp_path, monkeypatch):
    pool = _sim_pool()
    reqs = _sim_requests(pool)
    fast, _ = _run(pool, reqs, tmp_path / "fast.sqlite", False, monkeypatch)
    slow, _ = _run(pool, reqs, tmp_path / "slow.sqlite", True, monkeypatch)
    assert [_comparable(r) for r in fast] == [_comparable(r) for r in slow]
    assert len({r.text for r in fast}) > 5  # the set really exercises different answers


def test_sim_costs_are_the_pool_prices(tmp_path, monkeypatch):
    pool = _sim_pool()
    recs, _ = _run(pool, _sim_requests(pool)[:10], tmp_path / "c.sqlite", False, monkeypatch)
    for r in recs:
        assert r.cost_usd == pytest.approx(pool.get(r.model).cost(r.prompt_tokens, r.completion_tokens), rel=0, abs=0)


def test_sim_cache_contents_match_the_litellm_path(tmp_path, monkeypatch):
    pool = _sim_pool()
    reqs = _sim_requests(pool)
    _run(pool, reqs, tmp_path / "fast.sqlite", False, monkeypatch)
    _run(pool, reqs, tmp_path / "slow.sqlite", True, monkeypatch)
    fast, slow = _rows(tmp_path / "fast.sqlite"), _rows(tmp_path / "slow.sqlite")
    assert fast == slow and len(fast) == len(reqs)


def test_in_process_calls_never_reach_litellm(tmp_path, monkeypatch):
    async def refuse(**kwargs):
        pytest.fail(f"litellm.acompletion called for {kwargs.get('model')}")

    monkeypatch.setattr(litellm, "acompletion", refuse)
    pool = _sim_pool()
    recs, client = _run(pool, _sim_requests(pool)[:8], tmp_path / "n.sqlite", False, monkeypatch)
    assert len(recs) == 8 and client.stats.calls == 8 and client.stats.attempts == 8


def test_fixed_sim_latency_is_awaited_on_the_direct_path(tmp_path, monkeypatch):
    pool = _sim_pool()
    backend = {"sim": {"latency": "fixed", "fixed_latency_ms": 120.0}}
    recs, _ = _run(pool, _sim_requests(pool)[:1], tmp_path / "l.sqlite", False, monkeypatch, backend)
    assert recs[0].latency_ms >= 120.0


def test_sim_latency_longer_than_the_timeout_times_out_and_is_retried(tmp_path):
    pool = _sim_pool()
    sleeps = []

    async def no_backoff(s):
        sleeps.append(s)

    client = LLMClient(pool, None, ClientConfig(timeout_s=0.05, max_retries=1),
                       backend={"sim": {"latency": "fixed", "fixed_latency_ms": 5000.0}}, sleep=no_backoff)
    with pytest.raises(client_mod.LLMCallError, match="timed out"):
        asyncio.run(client.complete(_sim_requests(pool)[0]))
    assert client.stats.attempts == 2 and len(sleeps) == 1


@pytest.mark.parametrize("via_litellm", [False, True])
def test_bad_input_is_the_same_provider_input_error_on_both_paths(tmp_path, monkeypatch, via_litellm):
    pool = _sim_pool()
    bad = LLMRequest(model=pool.names[0], messages=({"role": "user", "content": "q"},),
                     metadata=_meta("synthetic/nope/zz"))
    with pytest.raises(ProviderInputError, match=r"gpt-4o \(sim/gpt-4o\): .*synthetic/nope/zz"):
        _run(pool, [bad], tmp_path / "e.sqlite", via_litellm, monkeypatch)


def test_replay_records_and_cache_match_the_litellm_path(tmp_path, monkeypatch, shared_data):
    pool = load_pool("replay-gsm8k")
    from hieramas_gnn.tasks import get_task

    qids = [q.id for q in get_task("gsm8k").load(limit=6)]
    reqs = [LLMRequest(model=m, messages=({"role": "user", "content": "q"},),
                       metadata={**_meta(q), "task": "gsm8k"}) for q in qids for m in pool.names[:3]]
    reqs += [LLMRequest(model=pool.names[0], messages=({"role": "user", "content": "s"},),
                        metadata={**_meta(q, position="synthesizer", context_answers=["12", "7"]), "task": "gsm8k"})
             for q in qids]
    fast, _ = _run(pool, reqs, tmp_path / "fast.sqlite", False, monkeypatch)
    slow, _ = _run(pool, reqs, tmp_path / "slow.sqlite", True, monkeypatch)
    assert [_comparable(r) for r in fast] == [_comparable(r) for r in slow]
    assert _rows(tmp_path / "fast.sqlite") == _rows(tmp_path / "slow.sqlite")


def test_litellm_completion_still_answers_sim_models_for_users():
    LLMClient(load_pool("sim"))  # registers the providers, as before
    resp = litellm.completion(model="sim/gpt-4o", messages=[{"role": "user", "content": "q"}],
                              metadata={"hieramas": _meta("synthetic/logic/2/0")})
    assert "The answer is" in resp.choices[0].message.content and resp.usage.completion_tokens > 0
