"""The committed figures in data/sim are what scripts/fit_sim.py makes, and the pools load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.paths import data_dir

SIM = data_dir() / "sim"


@pytest.mark.parametrize("pool,n", [("replay-mmlu-redux", 14), ("replay-gsm8k", 42), ("replay-math-l5", 40)])
def test_replay_pools_load_with_a_price_for_every_model(pool, n):
    p = load_pool(pool)
    assert len(p) == n
    assert all(m.litellm_model == f"replay/{m.name}" for m in p)
    assert all(m.input_cost_per_token > 0 and m.output_cost_per_token > 0 for m in p)


def test_replay_pool_prices_come_from_litellm_where_listed():
    p = load_pool("replay-mmlu-redux")
    gpt4o = p.get("openai_gpt-4o-2024-05-13")
    assert gpt4o.price_source == "litellm" and gpt4o.input_cost_per_token == pytest.approx(5e-6)


def test_sim_pool_has_expensive_generalists_and_cheap_specialists():
    p = load_pool("sim")
    prices = {m.name: m.output_cost_per_token for m in p}
    assert 6 <= len(p) <= 8
    assert max(prices.values()) / min(prices.values()) > 20


@pytest.mark.shared_data
def test_committed_behaviour_fit_is_what_the_script_makes(shared_data):
    from hieramas_gnn.backends.fit.behaviour_fit import fit_behaviour

    committed = json.loads((SIM / "behaviour.json").read_text())["config"]
    refit = fit_behaviour(shared_data / "aggregation/debate_turns.csv.gz").to_dict()
    assert refit == pytest.approx(committed, abs=2e-3)


@pytest.mark.shared_data
def test_committed_gsm8k_abilities_are_what_the_script_makes(shared_data):
    from hieramas_gnn.backends.fit.simfit import fit_benchmark, load_benchmark

    committed = json.loads((SIM / "irt_gsm8k.json").read_text())
    fit = fit_benchmark(load_benchmark(shared_data, "gsm8k"))
    assert fit.models == committed["models"]
    assert np.allclose(fit.theta, np.array(committed["theta"]), atol=1e-3)


@pytest.mark.shared_data
def test_live_sim_matches_real_accuracy_on_real_items(shared_data):
    from hieramas_gnn.backends.sim import Simulator
    from hieramas_gnn.llm.types import SimSettings
    from hieramas_gnn.tasks import get_task

    sim, task = Simulator(SimSettings(latency="off")), get_task("mmlu_redux")
    questions = task.load()[::2]
    real = json.loads((SIM / "irt_mmlu.json").read_text())["accuracy"]
    for model in ("gpt-4o", "claude-3.5-sonnet"):
        meta = {"task": "mmlu_redux", "role": "Solver", "position": "proposer"}
        got = np.mean([task.is_correct(sim.reply(model, {**meta, "question_id": q.id}, 10).answer, q)
                       for q in questions])
        assert abs(got - real[sim.spec(model).derived_from["mmlu"]]) < 0.02, model
