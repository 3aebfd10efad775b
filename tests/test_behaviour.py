"""The behaviour model's documented properties (docs/BACKENDS.md), one test each."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.backends.behaviour import NEW_CORRECT, BehaviourConfig, choice_distribution, choose, rng_for
from hieramas_gnn.paths import data_dir

CFG = BehaviourConfig.from_dict(json.loads((data_dir() / "sim" / "behaviour.json").read_text())["config"])
GOLD = "A"


def is_right(a: str) -> bool:
    return a == GOLD


def p_correct(own, context, strength=0.8, cfg=CFG) -> float:
    return choice_distribution(own, context, is_right, strength, cfg).get(GOLD, 0.0)


answers = st.sampled_from(["A", "B", "C", "D"])


@settings(max_examples=200, deadline=None)
@given(own=st.one_of(st.none(), answers), context=st.lists(st.one_of(st.none(), answers), max_size=7),
       strength=st.floats(0.01, 0.99), seed=st.integers(0, 10_000))
def test_synthesizer_outputs_only_an_answer_it_read_or_its_own(own, context, strength, seed):
    out = choose(own, context, is_right, strength, CFG, rng_for(seed))
    options = {a for a in [own, *context] if a is not None}
    assert out in options if options else out is None


def test_distribution_sums_to_one_over_the_options():
    dist = choice_distribution("B", ["A", "C", None, "A"], is_right, 0.7, CFG)
    assert set(dist) == {"A", "B", "C"}
    assert sum(dist.values()) == pytest.approx(1.0)


def test_same_call_same_answer_and_sample_index_changes_the_draw():
    draws = {choose("B", ["A", "C"], is_right, 0.7, CFG, rng_for(0, "m", "q", i)) for i in range(40)}
    again = [choose("B", ["A", "C"], is_right, 0.7, CFG, rng_for(0, "m", "q", 3)) for _ in range(5)]
    assert len(set(again)) == 1
    assert len(draws) > 1


def test_more_support_makes_an_answer_more_likely():
    assert p_correct("B", ["A", "B"]) < p_correct("B", ["A", "A", "B"]) < p_correct("B", ["A", "A", "A", "B"])


def test_unparseable_context_answers_carry_no_support():
    assert p_correct("B", ["A", None, None]) == pytest.approx(p_correct("B", ["A"]))


def test_a_correct_answer_is_recognised_at_equal_support():
    # one right, one wrong, equal support: the right one wins more often than a coin flip
    assert p_correct(None, ["A", "B"], strength=0.8) > 0.5


def test_stronger_models_adopt_a_right_peer_more_often():
    assert p_correct("B", ["A", "B"], strength=0.9) > p_correct("B", ["A", "B"], strength=0.5)


def test_stronger_models_resist_wrong_peers_more_often():
    # own answer right, both peers wrong and agreeing: P(C->W) falls with strength
    assert p_correct("A", ["B", "B"], strength=0.9) > p_correct("A", ["B", "B"], strength=0.5)


def test_a_correct_minority_is_mostly_lost():
    # one correct proposal against three agreeing wrong ones (own answer wrong too)
    assert p_correct("B", ["A", "B", "B", "B"], strength=0.7) < 0.25


def test_unanimous_right_context_is_kept():
    assert p_correct("A", ["A", "A"], strength=0.5) == pytest.approx(1.0)


def test_synthesizer_never_invents_the_right_answer():
    assert p_correct("B", ["C", "D"], strength=0.99) == 0.0


def test_debater_resolve_route_only_when_nobody_is_right():
    d_none = choice_distribution("B", ["C"], is_right, 0.8, CFG, allow_new=True)
    d_some = choice_distribution("B", ["A"], is_right, 0.8, CFG, allow_new=True)
    assert d_none[NEW_CORRECT] > 0 and NEW_CORRECT not in d_some


def test_config_rejects_unknown_fields():
    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="bogus"):
        BehaviourConfig.from_dict({"bogus": 1.0})


def test_rng_for_is_a_pure_function_of_its_parts():
    a = rng_for(1, "x", 2).random(3)
    b = rng_for(1, "x", 2).random(3)
    c = rng_for(1, "x", 3).random(3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_behaviour_parameters_are_config_read_from_a_file(tmp_path):
    from hieramas_gnn.backends.behaviour import load_behaviour

    path = tmp_path / "b.json"
    path.write_text(json.dumps({**CFG.to_dict(), "support_weight": 3.0}))
    assert load_behaviour(str(path), seed=5) == BehaviourConfig(**{**CFG.to_dict(), "support_weight": 3.0, "seed": 5})


def test_simulator_uses_the_configured_behaviour(tmp_path):
    from hieramas_gnn.backends.sim import Simulator
    from hieramas_gnn.llm.types import SimSettings

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"config": {**CFG.to_dict(), "support_weight": 50.0}}))  # pure majority
    sim = Simulator(SimSettings(latency="off", behaviour=str(path)))
    meta = {"task": "synthetic", "question_id": "synthetic/logic/1/0", "role": "r", "position": "synthesizer",
            "context_answers": ["C", "C", "C", "D"]}
    assert all(sim.reply("gpt-4o", {**meta, "sample_index": i}, 10).answer == "C" for i in range(10))


def test_one_models_readings_of_a_question_are_coupled():
    # same generator seed, the right answer better supported in the second reading: whenever the
    # first reading picks it, the second does too (no fresh chance to recognise it per layer)
    for seed in range(200):
        first = choose(None, ["B", "A", "B"], is_right, 0.7, CFG, rng_for(seed, "m", "q"))
        second = choose(None, ["A", "B", "A"], is_right, 0.7, CFG, rng_for(seed, "m", "q"))
        assert first != GOLD or second == GOLD


def test_choose_draws_with_the_distributions_probabilities():
    dist = choice_distribution("B", ["A", "C"], is_right, 0.7, CFG)
    draws = [choose("B", ["A", "C"], is_right, 0.7, CFG, rng_for(s)) for s in range(4000)]
    for a, p in dist.items():
        assert abs(draws.count(a) / len(draws) - p) < 0.03
