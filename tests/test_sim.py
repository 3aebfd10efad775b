"""The `sim/` backend: answers by ability and difficulty, correlated errors, specs, latency, code."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.backends import providers as providers_mod
from hieramas_gnn.backends.providers import SimProvider
from hieramas_gnn.backends.sim import Simulator
from hieramas_gnn.llm.types import SimSettings
from hieramas_gnn.tasks import get_task

TASK = get_task("synthetic")
QUESTIONS = TASK.load(split="val", limit=240)


def meta(q, **kw):
    return {"task": "synthetic", "question_id": q.id, "role": "Solver", "position": "proposer", **kw}


@pytest.fixture(scope="module")
def sim():
    return Simulator(SimSettings(latency="off"))


def accuracy(sim, model, inline=None, role="Solver"):
    rs = [sim.reply(model, meta(q, role=role), 100, inline) for q in QUESTIONS]
    return np.mean([TASK.score(r.text, q).correct for r, q in zip(rs, QUESTIONS)])


def test_same_call_gives_the_same_reply(sim):
    a = sim.reply("gpt-4o", meta(QUESTIONS[0]), 100)
    b = Simulator(SimSettings(latency="off")).reply("gpt-4o", meta(QUESTIONS[0]), 100)
    assert (a.text, a.completion_tokens) == (b.text, b.completion_tokens)


def test_accuracy_follows_ability(sim):
    strong = accuracy(sim, "x", {"ability": {"default": 6.0}})
    weak = accuracy(sim, "x", {"ability": {"default": -6.0}})
    assert strong > 0.9 and weak < 0.15


def test_role_skill_changes_only_that_role(sim):
    spec = {"ability": {"default": 0.0}, "role_skill": {"Inspector": 5.0}}
    assert accuracy(sim, "x", spec, role="Inspector") > accuracy(sim, "x", spec, role="Solver") + 0.2


def test_pool_spec_can_start_from_a_catalogue_model_with_offsets(sim):
    base = sim.spec("gemini-1.5-flash")
    spec = sim.spec("flash-logic", {"base": "gemini-1.5-flash", "ability_offset": {"logic": 1.5}})
    assert spec.ability["logic"] == pytest.approx(base.ability["logic"] + 1.5)
    assert spec.ability["history"] == base.ability["history"]


def test_offset_without_base_is_a_config_error(sim):
    with pytest.raises(ConfigError, match="ability_offset needs a base"):
        sim.spec("y", {"ability": {"default": 0.0}, "ability_offset": {"logic": 1.0}})


def test_unknown_model_names_it(sim):
    with pytest.raises(UserError, match="no-such-model"):
        sim.reply("no-such-model", meta(QUESTIONS[0]), 10)


def test_missing_question_id_names_the_key(sim):
    with pytest.raises(UserError, match="question_id"):
        sim.reply("gpt-4o", {"task": "synthetic"}, 10)


def test_wrong_answers_are_valid_and_not_gold(sim):
    for q in QUESTIONS[:60]:
        r = sim.reply("x", meta(q), 10, {"ability": {"default": -8.0}})
        assert r.answer != q.gold and TASK.extract(r.text, q) == r.answer


def test_errors_are_correlated_across_models_through_shared_difficulty(sim):
    def errors(name):
        return np.array([not TASK.score(sim.reply(name, meta(q), 10, {"ability": {"default": 2.5}}).text, q).correct
                         for q in QUESTIONS], dtype=float)

    a, b = errors("m1"), errors("m2")
    assert np.corrcoef(a, b)[0, 1] > 0.1


def test_wrong_answers_agree_across_models_more_than_chance(sim):
    mc = [q for q in QUESTIONS if q.meta.get("answer_kind") == "choice"][:80]
    weak = {"ability": {"default": -8.0}}
    same = np.mean([sim.reply("m1", meta(q), 10, weak).answer == sim.reply("m2", meta(q), 10, weak).answer
                    for q in mc])
    assert same > 1 / 3 + 0.1  # uniform over 3 distractors would agree 1/3 of the time


def test_context_output_is_one_of_the_answers_read_or_its_own(sim):
    for q in QUESTIONS[:40]:
        ctx = ["A", "B", None]
        r = sim.reply("gpt-4o", meta(q, position="synthesizer", context_answers=ctx), 100)
        assert r.answer in {"A", "B", r.own_answer}


def test_completion_tokens_come_from_the_reply_length_model(sim):
    r = sim.reply("gpt-4o", meta(QUESTIONS[1]), 400)
    assert r.prompt_tokens == 100
    assert r.completion_tokens >= len(r.text) // 4 and r.completion_tokens > 20


def test_fixed_latency_is_really_awaited(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr(providers_mod.asyncio, "sleep", fake_sleep)
    provider = SimProvider(SimSettings(latency="fixed", fixed_latency_ms=50))
    kw = {"litellm_params": {"metadata": {"hieramas": meta(QUESTIONS[0])}}, "optional_params": {}}
    asyncio.run(provider.acompletion("gpt-4o", [{"role": "user", "content": "q"}], **kw))
    assert slept == [pytest.approx(0.05)]


def test_latency_off_never_sleeps(monkeypatch):
    monkeypatch.setattr(providers_mod.asyncio, "sleep", lambda s: pytest.fail("slept"))
    provider = SimProvider(SimSettings(latency="off"))
    kw = {"litellm_params": {"metadata": {"hieramas": meta(QUESTIONS[0])}}, "optional_params": {}}
    out = asyncio.run(provider.acompletion("gpt-4o", [{"role": "user", "content": "q"}], **kw))
    assert out.usage.completion_tokens > 0


def test_per_call_settings_choose_the_latency(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr(providers_mod.asyncio, "sleep", fake_sleep)
    provider = SimProvider(SimSettings(latency="off"))
    settings = {"seed": 0, "latency": "fixed", "fixed_latency_ms": 25.0, "behaviour": None}
    kw = {"litellm_params": {"metadata": {"hieramas": meta(QUESTIONS[0])}},
          "optional_params": {"hieramas_backend": settings}}
    asyncio.run(provider.acompletion("gpt-4o", [{"role": "user", "content": "q"}], **kw))
    assert slept == [pytest.approx(0.025)]


def test_per_call_seed_changes_the_draws_like_a_seeded_simulator():
    provider = SimProvider(SimSettings(latency="off"))
    settings = {"seed": 7, "latency": "off", "fixed_latency_ms": 50.0, "behaviour": None}
    got = [provider.reply("gpt-4o", [{"content": "q"}], meta(q), {"hieramas_backend": settings}).text
           for q in QUESTIONS[:40]]
    want = [Simulator(SimSettings(seed=7, latency="off")).reply("gpt-4o", meta(q), 1).text for q in QUESTIONS[:40]]
    default = [provider.reply("gpt-4o", [{"content": "q"}], meta(q), {}).text for q in QUESTIONS[:40]]
    assert got == want and got != default


def test_one_simulator_per_distinct_settings():
    provider = SimProvider()
    a = provider.backend_for({"seed": 1, "latency": "off", "fixed_latency_ms": 50.0, "behaviour": None})
    b = provider.backend_for({"seed": 1, "latency": "off", "fixed_latency_ms": 50.0, "behaviour": None})
    c = provider.backend_for({"seed": 2, "latency": "off", "fixed_latency_ms": 50.0, "behaviour": None})
    assert a is b and a is not c and a.figures is c.figures


def test_bad_per_call_settings_are_an_input_error_naming_the_field():
    provider = SimProvider()
    with pytest.raises(Exception, match="latency") as info:
        provider.reply("gpt-4o", [{"content": "q"}], meta(QUESTIONS[0]),
                       {"hieramas_backend": {"seed": 0, "latency": "slow", "fixed_latency_ms": 1.0, "behaviour": None}})
    assert getattr(info.value, "hieramas_input_error", None)


def test_code_items_get_the_reference_or_a_mutated_program():
    he = get_task("humaneval")
    q = he.get("HumanEval/0")
    s = Simulator(SimSettings(latency="off"))
    hm = {"task": "humaneval", "question_id": q.id, "role": "Coder", "position": "proposer"}
    right = s.reply("x", hm, 10, {"ability": {"default": 9.0}})
    wrong = s.reply("x", hm, 10, {"ability": {"default": -9.0}})
    assert he.extract(right.text, q).strip() == q.gold.strip()
    assert wrong.answer.strip() != q.gold.strip()
    assert he.score(right.text, q).correct and not he.score(wrong.text, q).correct
