"""`from hieramas_gnn import Policy`: design through the one design-choice function, solve through
the client, pool override, and the litellm provider `hieramas/<bundle-name>` (in-process and as a
LiteLLM Proxy config names it)."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from hieramas_gnn.errors import UserError

FAST = {"cache": None, "backend": {"sim": {"latency": "off"}}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from hieramas_gnn.serve.testing import sim_bundle

    root = tmp_path_factory.mktemp("bundles")
    sim_bundle(root / "demo")
    return root


@pytest.fixture(scope="module")
def policy(folder):
    from hieramas_gnn import Policy

    return Policy.load(folder / "demo", **FAST)


@pytest.fixture(scope="module")
def questions():
    from hieramas_gnn.tasks import get_task

    return get_task("synthetic").load(None, "test", limit=4)


def test_design_is_the_design_chooser_s_choice(policy, folder, questions, monkeypatch):
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.mas.design import Design

    chooser, _ = load_chooser(folder / "demo")
    q = questions[0]
    design = policy.design(q.text)
    assert design == chooser.designs([(q.text, q.meta)])[0]
    assert Design.from_dict(json.loads(json.dumps(design.to_dict()))) == design  # JSON round trip
    monkeypatch.setattr(policy.chooser, "designs", lambda qs: (_ for _ in ()).throw(AssertionError("chooser")))
    with pytest.raises(AssertionError, match="chooser"):
        policy.design(q.text)  # no other way to choose


def test_solve_returns_answer_trace_cost_and_latency(policy, questions):
    q = questions[0]
    sol = policy.solve(q.text)
    assert not sol.failed and sol.failure_reason is None and sol.text
    assert sol.question_id == q.id and sol.correct in (True, False)
    assert sol.correct == (sol.answer == q.gold.strip("()"))  # graded by the task
    assert sol.cost_usd == pytest.approx(sum(c["cost_usd"] for c in sol.trace["calls"])) and sol.cost_usd > 0
    assert sol.tokens == sum(c["prompt_tokens"] + c["completion_tokens"] for c in sol.trace["calls"])
    assert sol.latency_ms > 0 and sol.design == policy.design(q.text).to_dict()
    json.dumps(sol.to_dict())


def test_asolve_and_the_batch_versions_give_the_same_solutions(policy, questions):
    texts = [q.text for q in questions]
    one = [policy.solve(t).text for t in texts]
    assert [s.text for s in policy.solve_many(texts, max_concurrency=2)] == one
    assert [s.text for s in asyncio.run(policy.asolve_many(list(reversed(texts))))] == list(reversed(one))
    assert asyncio.run(policy.asolve(texts[0])).text == one[0]


def test_free_text_on_the_sim_pool_is_a_clear_error_before_any_call(policy):
    from hieramas_gnn.errors import UserError

    with pytest.raises(UserError, match="answer only the questions of task 'synthetic'") as caught:
        policy.solve("What is the meaning of life?")
    assert "pool=" in str(caught.value)


def test_solve_inside_a_running_loop_says_to_await_asolve(policy, questions):
    async def inside():
        policy.solve(questions[0].text)

    with pytest.raises(UserError, match="await policy.asolve"):
        asyncio.run(inside())


def _pool_yaml(tmp_path, names, model_prefix="sim/"):
    from hieramas_gnn.llm.pool import load_pool

    sim = load_pool("sim")
    models = [{"name": n, "litellm_model": f"{model_prefix}{m.litellm_model.split('/', 1)[1]}",
               "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "extra": dict(m.extra)}
              for n, m in zip(names, sim)]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "models": models}))
    return path


def test_a_pool_override_keeps_the_names_and_uses_the_user_s_model_strings(folder, tmp_path, questions):
    from hieramas_gnn import Policy
    from hieramas_gnn.llm.pool import load_pool

    names = load_pool("sim").names
    mine = Policy.load(folder / "demo", _pool_yaml(tmp_path, names), **FAST)
    assert mine.pool.name == "mine" and mine.pool.get(names[0]).input_cost_per_token == 1e-6
    sol = mine.solve(questions[0].text)
    expected = sum(c["prompt_tokens"] * 1e-6 + c["completion_tokens"] * 2e-6 for c in sol.trace["calls"])
    assert sol.cost_usd == pytest.approx(expected)  # priced at the user's pool


def test_a_pool_override_with_other_names_is_refused_with_the_differences(folder, tmp_path):
    from hieramas_gnn import Policy
    from hieramas_gnn.llm.pool import load_pool

    names = load_pool("sim").names[:-1] + ["my-model"]
    with pytest.raises(UserError, match=r"missing \['.+'\], extra \['my-model'\]"):
        Policy.load(folder / "demo", _pool_yaml(tmp_path, names), **FAST)


# ------------------------------------------------------------------ the litellm provider


@pytest.fixture(scope="module")
def provider(folder):
    import litellm
    from litellm.utils import custom_llm_setup

    from hieramas_gnn.serve.provider import register_policy_provider

    before = list(litellm.custom_provider_map or [])
    yield register_policy_provider(folder, **FAST)
    litellm.custom_provider_map = before
    custom_llm_setup()


def test_litellm_completion_on_hieramas_bundle_runs_the_mas(provider, policy, questions):
    import litellm

    q = questions[1]
    reply = litellm.completion(model="hieramas/demo", messages=[{"role": "user", "content": q.text}])
    expected = policy.solve(q.text)
    assert reply.choices[0].message.content == expected.text
    assert reply.usage.total_tokens == expected.tokens
    assert reply.hieramas["design"] == expected.design


def test_litellm_acompletion_on_hieramas_bundle_runs_the_mas(provider, policy, questions):
    import litellm

    q = questions[2]
    reply = asyncio.run(litellm.acompletion(model="hieramas/demo", messages=[{"role": "user", "content": q.text}]))
    assert reply.choices[0].message.content == policy.solve(q.text).text


def test_an_unknown_bundle_name_is_a_bad_request_listing_the_bundles(provider):
    import litellm

    with pytest.raises(litellm.BadRequestError, match=r"no policy bundle 'nope' .*found: demo"):
        litellm.completion(model="hieramas/nope", messages=[{"role": "user", "content": "hi"}])


def test_the_litellm_proxy_config_entry_resolves_to_a_working_handler(folder, policy, questions, monkeypatch):
    """What the LiteLLM Proxy does with `litellm_settings.custom_provider_map` (proxy_server.py):
    resolve `custom_handler` by import path, set the map, call `custom_llm_setup()`."""
    import litellm
    from litellm.proxy.types_utils.utils import get_instance_fn
    from litellm.utils import custom_llm_setup

    from hieramas_gnn.backends.providers import register_offline_providers
    from tests.test_serving_docs import snippet

    config = yaml.safe_load(snippet("proxy-config"))
    monkeypatch.setenv("HIERAMAS_POLICY_DIR", str(folder))
    before = list(litellm.custom_provider_map)
    register_offline_providers()
    try:
        entries = config["litellm_settings"]["custom_provider_map"]
        litellm.custom_provider_map = [e for e in litellm.custom_provider_map if e["provider"] != "hieramas"] + [
            {"provider": e["provider"], "custom_handler": get_instance_fn(e["custom_handler"])} for e in entries]
        custom_llm_setup()
        handler = litellm.custom_provider_map[-1]["custom_handler"]
        monkeypatch.setattr(handler, "policy_options", FAST)
        monkeypatch.setattr(handler, "policies", {})
        model = config["model_list"][0]["litellm_params"]["model"]
        q = questions[3]
        reply = litellm.completion(model=model, messages=[{"role": "user", "content": q.text}])
        assert model == "hieramas/demo" and reply.choices[0].message.content == policy.solve(q.text).text
    finally:
        litellm.custom_provider_map = before
        custom_llm_setup()
