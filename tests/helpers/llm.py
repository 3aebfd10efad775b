"""Small builders for the LLM tests: a pool of `faults/<mode>` models and requests."""

from __future__ import annotations

from hieramas_gnn.llm.pool import Pool, pool_from_dict
from hieramas_gnn.llm.types import LLMRequest

PRICE_IN = 1e-6   # USD per prompt token of every test model
PRICE_OUT = 2e-6  # USD per completion token


def faults_pool(*modes: str, extra: dict | None = None) -> Pool:
    """A pool with one model per fault mode, named after the mode."""
    models = [{"name": m, "litellm_model": f"faults/{m}", "input_cost_per_token": PRICE_IN,
               "output_cost_per_token": PRICE_OUT, "extra": dict(extra or {})} for m in modes]
    return pool_from_dict({"name": "faults", "models": models}, where="pool test", default_name="faults")


def request(model: str = "succeed", text: str = "What is 2+2?", **kw) -> LLMRequest:
    """A one-message request to pool model `model`."""
    return LLMRequest(model=model, messages=({"role": "user", "content": text},), **kw)


def warm_up(pool: Pool, model: str) -> None:
    """One call with a generous timeout, so litellm's first-call imports (seconds on a loaded
    machine) do not count against the short timeouts the fault tests use."""
    import asyncio

    from hieramas_gnn.llm.client import ClientConfig, LLMClient

    asyncio.run(LLMClient(pool, None, ClientConfig(timeout_s=120)).complete(request(model, "warm up")))
