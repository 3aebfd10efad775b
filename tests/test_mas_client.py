"""The executor over the real LLM client (litellm + the test-only faults provider)."""

from __future__ import annotations

import asyncio

from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import pool_from_dict
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.executor import run_design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.testing import LetterTask

POOL = {"name": "faults", "models": [
    {"name": "ok", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6,
     "output_cost_per_token": 2e-6, "profile": "echo"},
    {"name": "down", "litellm_model": "faults/down", "input_cost_per_token": 1e-6,
     "output_cost_per_token": 2e-6, "profile": "always fails"},
]}


def test_provider_failure_mid_dag_fails_the_episode_with_the_reason():
    pool = pool_from_dict(POOL, where="test pool", default_name="faults")
    client = LLMClient(pool, None, ClientConfig(max_retries=0))
    roles = ("planner", "solver", "verifier")
    design = Design(roles, (Mixture(("ok",), "ok"), Mixture(("ok", "down"), "ok"), Mixture(("ok",), "ok")),
                    ((0, 1), (1, 2)), "ok")
    task = LetterTask()
    trace = asyncio.run(run_design(design, task.questions(1)[0], task, client, get_roleset("synthetic")))
    assert trace.failed and trace.correct is None
    assert trace.failure_reason.startswith("solver/proposer call to down failed")
    assert [(c.role, c.model) for c in trace.calls] == [("planner", "ok"), ("solver", "ok")]
    assert trace.cost_usd > 0
