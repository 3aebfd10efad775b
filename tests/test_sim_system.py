"""System-level check of the offline world: the real debates re-run with the behaviour model.

Unit behaviour of the re-run (vote rule, replayed round 0, format failures, per-model
stubbornness, held-out fitting) on tiny hand-made debates, then the figures on the real logs
(../shared/data/aggregation): the fidelity bars (held-out final-vote MAE <= 0.03, gain within
0.05 in >= 12 of 14 settings), and the measured levels of the population model the backends use,
so a change that makes either worse fails (docs/BACKENDS.md reports the numbers).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hieramas_gnn.backends.behaviour import BehaviourConfig, choice_distribution
from hieramas_gnn.backends.fit import system_fit as S
from hieramas_gnn.backends.fit.format_fit import FAIL, WRONG, FormatModel, fit_format
from hieramas_gnn.backends.fit.model_effects import with_stubbornness
from hieramas_gnn.paths import data_dir

CFG = BehaviourConfig.from_dict(json.loads((data_dir() / "sim" / "behaviour.json").read_text())["config"])


def debates(answers: list[list[list[int]]], strength: float = 0.7, fail: float = 0.0) -> S.Debates:
    """Debates from answer ids [D][R][A] (every agent present, last round = R - 1)."""
    a = np.array(answers)
    d, r, k = a.shape
    full = np.zeros((d, r, S.A_MAX), dtype=np.int64)
    full[:, :, :k] = a
    present = np.zeros((d, S.A_MAX), dtype=bool)
    present[:, :k] = True
    return S.Debates(full, present, np.full(d, r - 1), np.full(d, strength), np.full(d, fail),
                     np.zeros(d, dtype=np.int64), ("bench/model",))


def test_majority_vote_is_right_only_for_a_unique_right_plurality():
    state = np.array([[1, 1, 2], [1, 2, 3], [1, 2, 0], [0, 0, 0]])  # 1 = gold, 0 = unparseable
    assert S.majority_correct(state, np.ones_like(state, dtype=bool)).tolist() == [True, False, False, False]


def test_real_outcomes_read_round_zero_and_the_last_round():
    real = S.real_outcomes(debates([[[1, 2, 2], [1, 1, 2]]]))
    assert real["vote_0"][0] == 0.0 and real["vote_last"][0] == 1.0
    assert real["agent_0"][0] == pytest.approx(1 / 3) and real["agent_last"][0] == pytest.approx(2 / 3)


def test_unanimous_right_debate_stays_right():
    sim = S.simulate(debates([[[1, 1, 1], [0, 0, 0]]]), CFG, reps=200)
    assert sim["vote_last"][0] == 1.0


def test_nobody_right_stays_wrong_without_the_resolve_route():
    cfg = replace(CFG, resolve_base=-50.0, resolve_slope=0.0)
    sim = S.simulate(debates([[[2, 3, 2], [0, 0, 0]]]), cfg, reps=200)
    assert sim["vote_last"][0] == 0.0 and sim["agent_last"][0] == 0.0


def test_stronger_teams_gain_more_from_the_same_round_zero():
    start = [[[1, 2, 3], [0, 0, 0]]]
    weak = S.simulate(debates(start, strength=0.4), CFG, reps=400, seed=1)
    strong = S.simulate(debates(start, strength=0.9), CFG, reps=400, seed=1)
    assert strong["agent_last"][0] > weak["agent_last"][0]


def test_format_failures_make_answers_unparseable_at_the_given_rate():
    sim = S.simulate(debates([[[1, 1, 1], [0, 0, 0]]], fail=1.0), CFG, reps=50, fmt=FormatModel())
    assert sim["agent_last"][0] == 0.0


def test_without_a_format_model_every_reply_is_parsed():
    sim = S.simulate(debates([[[1, 1, 1], [0, 0, 0]]], fail=1.0), CFG, reps=50, fmt=None)
    assert sim["vote_last"][0] == 1.0


def test_format_failures_after_a_wrong_answer_filter_wrong_votes():
    # two wrong agents, one right: failing after a wrong answer removes wrong votes
    start = [[[1, 2, 2], [0, 0, 0]]] * 20
    neutral = S.simulate(debates(start, fail=0.3), CFG, reps=200, seed=3, fmt=FormatModel())
    selective = S.simulate(debates(start, fail=0.3), CFG, reps=200, seed=3,
                           fmt=FormatModel(after_right=-3.0, after_wrong=1.0))
    assert selective["vote_last"].mean() > neutral["vote_last"].mean()


def _format_log(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """A debate log of (agent, round, answer, correct) rows: one question, one setting."""
    return pd.DataFrame([{"source_path": "f", "question_id": "q", "agent_idx": a, "round": r, "answer": x,
                          "correct": c, "benchmark": "mmlu", "model": "m", "team": "homogeneous"}
                         for a, r, x, c in rows])


def test_format_model_learns_that_failures_follow_wrong_answers():
    rows = []
    for i in range(40):  # agents right at round 0 stay parsed, wrong ones fail half the time
        right = i % 2 == 0
        rows += [(str(i), "0", "A" if right else "B", "1" if right else "0"),
                 (str(i), "1", "A" if right else ("" if i % 4 == 1 else "B"), "1" if right else "0")]
    fmt = fit_format(_format_log(rows))
    assert fmt.after_wrong > fmt.after_right


def test_format_model_probability_is_the_base_rate_at_zero_offsets():
    p = FormatModel().p_fail(np.array([0.2, 0.4]), np.array([FAIL, WRONG]))
    assert p == pytest.approx([0.2, 0.4])


def test_a_stubborn_model_keeps_its_own_answer_more():
    def right(a):
        return a == "A"

    base = choice_distribution("A", ["B", "B"], right, 0.6, CFG)["A"]
    stubborn = choice_distribution("A", ["B", "B"], right, 0.6, with_stubbornness(CFG, 1.0))["A"]
    assert stubborn > base


def test_plurality_bonus_favours_the_answer_with_the_unique_largest_support():
    def right(a):
        return a == "A"

    ctx = ["A", "A", "B", "C", "D"]
    off, on = replace(CFG, plurality_bonus=0.0), replace(CFG, plurality_bonus=1.0)
    assert choice_distribution(None, ctx, right, 0.6, on)["A"] > choice_distribution(None, ctx, right, 0.6, off)["A"]


def test_plurality_bonus_does_nothing_when_the_largest_support_is_tied():
    def right(a):
        return a == "A"

    off, on = replace(CFG, plurality_bonus=0.0), replace(CFG, plurality_bonus=1.0)
    assert choice_distribution(None, ["A", "B"], right, 0.6, on) == choice_distribution(None, ["A", "B"], right, 0.6, off)


# ---------------------------------------------------------------- the real debate logs

@pytest.fixture(scope="module")
def log_path():
    from tests.conftest import require_shared

    return require_shared("aggregation/debate_turns.csv.gz") / "aggregation" / "debate_turns.csv.gz"


@pytest.fixture(scope="module")
def system(log_path):
    return S.system_validation(log_path, CFG, reps=200)


@pytest.mark.shared_data
def test_real_figures_match_the_logs_own_table(log_path):
    table = pd.read_csv(log_path.parent / "strength_vs_aggregation.csv")
    deb = S.load_debates(log_path)
    real = S.real_outcomes(deb)
    for row in table.itertuples(index=False):
        m = deb.setting == deb.names.index(S.setting_name(row.benchmark, row.model))
        assert real["vote_0"][m].mean() == pytest.approx(row.majority_vote_round0, abs=0.005)
        assert real["vote_last"][m].mean() == pytest.approx(row.majority_vote_last, abs=0.005)


@pytest.mark.shared_data
def test_every_setting_is_simulated_with_parameters_fitted_without_it(log_path, monkeypatch):
    from hieramas_gnn.backends.fit import behaviour_fit, model_effects

    seen: dict[str, list[set]] = {"behaviour": [], "format": [], "spread": [], "model": []}

    def keys(train):
        return set(zip(train["benchmark"], train["model"], train["team"], train["round"]))

    def record(what, ret):
        def f(train, *a, **k):
            seen[what].append(keys(train))
            return ret(*a, **k)
        return f

    monkeypatch.setattr(behaviour_fit, "fit_behaviour", record("behaviour", lambda base=None, **_: base))
    monkeypatch.setattr(S, "fit_format", record("format", lambda *_, **__: FormatModel()))
    monkeypatch.setattr(model_effects, "stubbornness_spread", record("spread", lambda *_, **__: (1.0, {})))
    monkeypatch.setattr(model_effects, "model_stubbornness", record("model", lambda *_, **__: (0.0, 0)))
    report = S.system_validation(log_path, CFG, reps=2)
    assert report["n_settings"] == 14
    for what, calls in seen.items():
        assert len(calls) == 14, what
        for row, train in zip(report["settings"], calls):
            bench, model = row["setting"].split("/", 1)
            assert not any(k[:3] == (bench, model, "homogeneous") for k in train), (what, row["setting"])


@pytest.mark.shared_data
def test_system_report_has_real_and_simulated_vote_and_gain_per_setting(system):
    assert system["heldout"] == "leave-one-setting-out" and system["n_settings"] == 14
    for row in system["settings"]:
        assert {"setting", "vote_round0", "real_vote", "sim_vote", "real_gain", "sim_gain",
                "real_agent_acc", "sim_agent_acc", "stubbornness", "population_sim_vote",
                "population_sim_gain"} <= set(row)
        assert row["real_gain"] == pytest.approx(row["real_vote"] - row["vote_round0"])


@pytest.mark.shared_data
def test_heldout_final_vote_error_is_at_most_003(system):
    # measured 0.025 (bar 0.03)
    assert system["vote_mae"] <= 0.03


@pytest.mark.shared_data
def test_simulated_gain_within_005_in_at_least_twelve_settings(system):
    # measured 13 of 14 (bar 12; the miss: mmlu/VibeThinker-1.5B, -0.050 real / +0.053 sim)
    assert system["gain_within_005"] >= 12


@pytest.mark.shared_data
def test_heldout_per_step_likelihood_stays_at_its_measured_level(system):
    # measured 0.2384 nats per parsed reply (0.2456 without the stubbornness term, 0.2466 with
    # strength over all answers too) and 0.0795 for the format failures (0.1054 with offsets 0)
    assert system["heldout_choice_nll"] < 0.240 and system["heldout_format_nll"] < 0.085


@pytest.mark.shared_data
def test_population_model_without_stubbornness_stays_at_its_measured_level(system):
    # what the backends' models get (no debate log of their own): measured MAE 0.030, 13 of 14
    assert system["population"]["vote_mae"] < 0.035 and system["population"]["gain_within_005"] >= 11


@pytest.mark.shared_data
def test_collaboration_gains_in_the_settings_where_real_teams_gain(system):
    gaining = [r for r in system["settings"] if r["real_gain"] > 0.045]  # +0.05 or more (float)
    # measured: 7 of 7 at seed 0, but gsm8k Mistral-7B sits at +0.002 (-0.003 at seed 7)
    assert len(gaining) == 7 and sum(r["sim_gain"] > 0 for r in gaining) >= 6


@pytest.mark.shared_data
def test_stubbornness_of_a_model_comes_from_its_other_settings(system):
    by = {r["setting"]: r for r in system["settings"]}
    # Qwen3-0.6B keeps its answers on GSM8K, so its MMLU debate is simulated stubborn, and back
    assert by["mmlu/Qwen3-0.6B"]["stubbornness"] > 0.5 and by["gsm8k/Qwen3-0.6B"]["stubbornness"] > 0.5
    # a model with no other setting gets the population value
    assert by["mmlu/Llama-3.2-1B-Instruct"]["stubbornness"] == 0.0
    assert by["mmlu/Llama-3.2-1B-Instruct"]["stubbornness_rows"] == 0


@pytest.mark.shared_data
def test_mmlu_pro_five_agent_round_two_accuracy_within_0035(system):
    # measured: within 0.026 for four agents, 0.032 for qwen3.8-27b (a strong agent that barely
    # adopts right peers, W->C 0.095 real vs 0.38 sim: the population model cannot know that)
    rows = system["mmlu_pro_5agent"]
    assert len(rows) == 5
    for r in rows:
        assert abs(r["sim_round1_acc"] - r["real_round1_acc"]) < 0.01
        assert abs(r["sim_round2_acc"] - r["real_round2_acc"]) < 0.035, r


@pytest.mark.shared_data
def test_every_agent_of_the_mmlu_pro_debate_ends_at_or_above_its_start(system):
    for r in system["mmlu_pro_5agent"]:
        assert r["sim_round2_acc"] >= r["sim_round1_acc"] - 0.005 and r["real_round2_acc"] >= r["real_round1_acc"]
