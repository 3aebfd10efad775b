"""System-level check of the offline world: the real debates re-run with the behaviour model.

Unit behaviour of the re-run (vote rule, replayed round 0, format failures, held-out fitting) on
tiny hand-made debates, then the figures on the real logs (../shared/data/aggregation). The
issue's bars (held-out final-vote MAE <= 0.03, gain within 0.05 in >= 12 of 14 settings) are not
met by the current model; the tests on real data pin what it does reach, so a change that makes
it worse fails (docs/BACKENDS.md reports the numbers).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hieramas_gnn.backends.behaviour import BehaviourConfig, choice_distribution
from hieramas_gnn.backends.fit import system_fit as S
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
    sim = S.simulate(debates([[[1, 1, 1], [0, 0, 0]]], fail=1.0), CFG, reps=50)
    assert sim["agent_last"][0] == 0.0


def test_format_persistence_is_the_difference_of_the_two_failure_rates():
    rows = [("f", "q", "0", r, a) for r, a in [("0", ""), ("1", ""), ("2", "5")]]
    rows += [("f", "q", "1", r, a) for r, a in [("0", "5"), ("1", "5"), ("2", "")]]
    log = pd.DataFrame(rows, columns=["source_path", "question_id", "agent_idx", "round", "answer"])
    # after a failure: 1 of 2 fail again; after a parsed answer: 1 of 2 fail -> 0.0
    assert S.format_persistence(log) == pytest.approx(0.0)
    log.loc[5, "answer"] = "5"  # now no failure after a parsed answer: 0.5 - 0.0
    assert S.format_persistence(log) == pytest.approx(0.5)


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
    from hieramas_gnn.backends.fit import behaviour_fit

    seen: list[set] = []

    def record(train, base=None, **_):
        seen.append(set(zip(train["benchmark"], train["model"], train["team"])))
        return base

    monkeypatch.setattr(behaviour_fit, "fit_behaviour", record)
    report = S.system_validation(log_path, CFG, reps=2)
    assert len(seen) == report["n_settings"] == 14
    for row, keys in zip(report["settings"], seen):
        bench, model = row["setting"].split("/", 1)
        assert (bench, model, "homogeneous") not in keys


@pytest.mark.shared_data
def test_system_report_has_real_and_simulated_vote_and_gain_per_setting(system):
    assert system["heldout"] == "leave-one-setting-out" and system["n_settings"] == 14
    for row in system["settings"]:
        assert {"setting", "vote_round0", "real_vote", "sim_vote", "real_gain", "sim_gain",
                "real_agent_acc", "sim_agent_acc"} <= set(row)
        assert row["real_gain"] == pytest.approx(row["real_vote"] - row["vote_round0"])


@pytest.mark.shared_data
def test_heldout_final_vote_error_stays_at_the_measured_level(system):
    # measured 0.041 (issue's bar 0.03, not reached); 0.05 catches a regression
    assert system["vote_mae"] < 0.05


@pytest.mark.shared_data
def test_simulated_gain_within_005_in_at_least_ten_settings(system):
    # measured 10 of 14 (issue's bar 12, not reached)
    assert system["gain_within_005"] >= 10


@pytest.mark.shared_data
def test_collaboration_gains_in_most_settings_where_real_teams_gain(system):
    gaining = [r for r in system["settings"] if r["real_gain"] > 0.045]  # +0.05 or more (float)
    # measured: 5 of 7 (misses: gsm8k Mistral-7B, mmlu Llama-3.2-3B)
    assert len(gaining) == 7 and sum(r["sim_gain"] > 0 for r in gaining) >= 5


@pytest.mark.shared_data
def test_mmlu_pro_five_agent_round_two_accuracy_within_003(system):
    rows = system["mmlu_pro_5agent"]
    assert len(rows) == 5
    for r in rows:
        assert abs(r["sim_round1_acc"] - r["real_round1_acc"]) < 0.01
        assert abs(r["sim_round2_acc"] - r["real_round2_acc"]) < 0.03, r
