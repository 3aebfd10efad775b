"""Bad input to the offline providers (unknown model / question, missing metadata) fails at once.

litellm wraps a plain exception raised by a custom provider as an `APIConnectionError`, which the
client would retry with backoff; the offline providers raise a non-retryable error instead and the
client surfaces it as `ProviderInputError` (a `UserError`) naming the model and the question.
"""

from __future__ import annotations

import asyncio

import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.backends.providers import register_offline_providers
from hieramas_gnn.llm.types import LLMRequest, ProviderInputError

META = {"task": "synthetic", "question_id": "synthetic/logic/2/0", "role": "Solver",
        "position": "proposer", "context_answers": []}


class CountingSleep:
    """Stands in for asyncio.sleep: counts backoff waits without waiting."""

    def __init__(self) -> None:
        self.waits = 0

    async def __call__(self, seconds: float) -> None:
        self.waits += 1


@pytest.fixture
def sim_client():
    pool = load_pool("sim")
    sleep = CountingSleep()
    client = LLMClient(pool, config=ClientConfig(max_retries=4, backoff_base_s=0.001),
                       backend={"sim": {"latency": "off"}}, sleep=sleep)
    return client, sleep


def _complete(client, model, meta):
    return asyncio.run(client.complete(LLMRequest(
        model=model, messages=({"role": "user", "content": "q"},), metadata=meta)))


def test_unknown_question_fails_fast_naming_the_id(sim_client):
    client, sleep = sim_client
    with pytest.raises(ProviderInputError, match="synthetic/nope/zz"):
        _complete(client, "gpt-4o", {**META, "question_id": "synthetic/nope/zz"})
    assert client.stats.attempts == 1 and client.stats.retries == 0 and sleep.waits == 0


def test_offline_input_error_is_a_user_error_naming_the_model(sim_client):
    client, _ = sim_client
    with pytest.raises(UserError, match="gpt-4o"):
        _complete(client, "gpt-4o", {**META, "question_id": "synthetic/nope/zz"})


def test_missing_metadata_fails_fast(sim_client):
    client, sleep = sim_client
    with pytest.raises(ProviderInputError, match="question_id"):
        _complete(client, "gpt-4o", {k: v for k, v in META.items() if k != "question_id"})
    assert client.stats.attempts == 1 and sleep.waits == 0


def test_unknown_sim_model_fails_fast_naming_it(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nmodels:\n  - name: ghost\n    litellm_model: sim/no-such-model\n"
                    "    input_cost_per_token: 1.0e-6\n    output_cost_per_token: 1.0e-6\n")
    sleep = CountingSleep()
    client = LLMClient(load_pool(path), config=ClientConfig(max_retries=4), backend={"sim": {"latency": "off"}},
                       sleep=sleep)
    with pytest.raises(ProviderInputError, match="no-such-model"):
        _complete(client, "ghost", META)
    assert client.stats.attempts == 1 and sleep.waits == 0


def test_unknown_replay_question_fails_fast_naming_the_id(shared_data):
    register_offline_providers()
    pool = load_pool("replay-mmlu-redux")
    sleep = CountingSleep()
    client = LLMClient(pool, config=ClientConfig(max_retries=4), sleep=sleep)
    meta = {**META, "task": "mmlu_redux", "question_id": "mmlu/abstract_algebra/999999"}
    with pytest.raises(ProviderInputError, match="abstract_algebra/999999"):
        _complete(client, pool.names[0], meta)
    assert client.stats.attempts == 1 and sleep.waits == 0
