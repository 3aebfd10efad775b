"""Paired statistics (`stats.py`) checked against scipy and hand-computed values, and the
committed experiment claims recomputed from their saved results."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats as sps

from hieramas_gnn.stats import PairedGap, paired_gap, unpaired_band, verdict, word
from hieramas_gnn.paths import REPO_ROOT

# Per-query grades of two methods on the same 20 questions: A fixes 5 of B's misses and breaks
# none, so pairing matters (paired p = 0.021; the unpaired test would say 0.096).
B = [1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1]
A = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1]


def test_paired_gap_on_a_hand_computed_vector():
    # d = a - b = [1, 0, 1, 0, 1]: mean 0.6, sample sd sqrt(0.3), se sqrt(0.3 / 5), t = 0.6 / se, df 4
    gap = paired_gap([1, 1, 1, 0, 1], [0, 1, 0, 0, 0])
    se = math.sqrt(0.3 / 5)
    assert gap.n == 5
    assert gap.gap == pytest.approx(0.6, abs=1e-12)
    assert gap.se == pytest.approx(se, rel=1e-12)
    assert gap.p_value == pytest.approx(2 * sps.t.sf(0.6 / se, df=4), rel=1e-9)
    assert gap.p_value == pytest.approx(0.0705, abs=5e-4)


def test_paired_gap_matches_scipy_paired_t_test_and_not_the_unpaired_one():
    gap = paired_gap(A, B)
    d = np.subtract(A, B)
    assert gap.gap == pytest.approx(d.mean(), abs=1e-12)
    assert gap.se == pytest.approx(sps.sem(d), rel=1e-12)
    assert gap.p_value == pytest.approx(sps.ttest_rel(A, B).pvalue, rel=1e-9)
    assert gap.p_value == pytest.approx(2 * sps.t.sf(d.mean() / sps.sem(d), df=len(d) - 1), rel=1e-9)
    unpaired = sps.ttest_ind(A, B).pvalue
    assert gap.p_value == pytest.approx(0.0210, abs=5e-4)
    assert gap.p_value < 0.05 < unpaired  # the pairing is what makes this gap significant


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_gap_matches_scipy_on_random_reward_vectors(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.6, 0.3, size=200)
    b = a - 0.03 + rng.normal(0.0, 0.2, size=200)
    gap = paired_gap(a, b)
    ref = sps.ttest_rel(a, b)
    assert gap.gap == pytest.approx(float(np.mean(a - b)), rel=1e-12)
    assert gap.se == pytest.approx(float(sps.sem(a - b)), rel=1e-12)
    assert gap.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)
    assert gap.band == pytest.approx(2 * gap.se)


def test_paired_gap_edge_cases():
    same = paired_gap([1, 0, 1], [1, 0, 1])
    assert (same.gap, same.se, same.p_value) == (0.0, 0.0, 1.0)
    shifted = paired_gap([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])  # a constant difference: certain
    assert (shifted.gap, shifted.se, shifted.p_value) == (0.5, 0.0, 0.0)
    one = paired_gap([1.0], [0.0])
    assert one.gap == 1.0 and one.se == math.inf and math.isnan(one.p_value) and one.n == 1
    empty = paired_gap([], [])
    assert empty.gap == 0.0 and empty.n == 0
    assert empty.to_dict()["p_value"] is None
    with pytest.raises(ValueError, match="same 1-d shape"):
        paired_gap([1, 0], [1, 0, 1])


def test_to_dict_rounds_to_four_places():
    assert PairedGap(0.123456, 0.0123456, 9, 0.0456789).to_dict() == {
        "gap": 0.1235, "se": 0.0123, "n": 9, "p_value": 0.0457}


def test_unpaired_band_is_two_binomial_standard_errors():
    assert unpaired_band(0.9, 0.8, 100) == pytest.approx(2 * math.sqrt((0.09 + 0.16) / 100), rel=1e-12)
    assert unpaired_band(0.5, 0.5, 0) == pytest.approx(2 * math.sqrt(0.5))  # n < 1 reads as 1


@pytest.mark.parametrize("gap, band, expected", [
    (0.03, 0.02, "BEATS it (+0.030 > paired 2 SE 0.020)"),
    (-0.03, 0.02, "does NOT beat it (-0.030, beyond paired 2 SE 0.020)"),
    (0.02, 0.02, "TIES with it (+0.020 within paired 2 SE 0.020)"),
    (-0.02, 0.02, "TIES with it (-0.020 within paired 2 SE 0.020)"),
    (0.0, 0.0, "TIES with it (+0.000 within paired 2 SE 0.000)"),
])
def test_verdict_wording_at_and_around_the_band(gap, band, expected):
    assert verdict(gap, band) == expected


def test_two_queries_are_enough_for_a_p_value():
    gap = paired_gap([1, 0], [0, 0])  # d = [1, 0]: se = 0.5, t = 1 on 1 degree of freedom
    assert (gap.gap, gap.se) == (0.5, 0.5)
    assert gap.p_value == pytest.approx(0.5, rel=1e-9) == sps.ttest_rel([1, 0], [0, 0]).pvalue


def test_a_gap_exactly_at_the_band_is_a_tie():
    assert word(PairedGap(0.5, 0.25, 10, 0.1)) == "tie" == word(PairedGap(-0.5, 0.25, 10, 0.1))
    assert "TIES" in verdict(0.5, 0.5) and "TIES" in verdict(-0.5, 0.5)


def test_word_uses_two_standard_errors():
    assert word(PairedGap(0.021, 0.01, 50, 0.04)) == "better"
    assert word(PairedGap(-0.021, 0.01, 50, 0.04)) == "worse"
    assert word(PairedGap(0.02, 0.01, 50, 0.05)) == "tie"
    assert word(PairedGap(-0.019, 0.01, 50, 0.06)) == "tie"


# ------------------------------------------------------------------- committed claims

CREDIT = REPO_ROOT / "experiments/credit_assignment"


def _success(variant: str) -> tuple[int, int]:
    """(seeds that found every role's specialist, seeds) of one row of the table."""
    runs = json.loads((CREDIT / "results.json").read_text())["runs"]
    mine = [r for r in runs if r.get("variant", r["baseline"]) == variant]
    assert all(r["success"] == all(v > 0.5 for v in r["roles"].values()) for r in mine)
    return sum(r["success"] for r in mine), len(mine)


def test_credit_assignment_success_rates_recomputed_from_the_runs():
    """README / results.md: none 62% (5/8), moving average 75% (6/8), counterfactual 100% (8/8)."""
    counts = {b: _success(b) for b in ("none", "moving_average", "counterfactual")}
    assert counts == {"none": (5, 8), "moving_average": (6, 8), "counterfactual": (8, 8)}
    table = (CREDIT / "results.md").read_text()
    for b, (k, n) in counts.items():
        assert re.search(rf"^\| {b} \| {n} \| {round(100 * k / n)}% \|", table, re.M), b


def test_credit_assignment_claim_states_its_fisher_p_value():
    """5/8 vs 8/8 seeds is not significant on its own (Fisher's exact test, two-sided): the text
    making the claim says so, with the value recomputed here."""
    (k0, n0), (k1, n1) = _success("none"), _success("counterfactual")
    p = sps.fisher_exact([[k0, n0 - k0], [k1, n1 - k1]]).pvalue
    assert p == pytest.approx(0.2, abs=5e-3)
    for doc in (REPO_ROOT / "docs/RESULTS.md", CREDIT / "README.md"):
        text = doc.read_text()
        assert f"p = {p:.1f} by Fisher's exact test" in " ".join(text.split()), doc


def test_topology_route_claim_is_consistent_with_its_saved_results():
    """`experiments/results/topology_routes.json`: the gap is the difference of the two routes'
    means, the classifier is ahead in every seed, and the p-value is the two-sided t-test of
    gap / se on n - 1 degrees of freedom; with per-query vectors saved, the gap is recomputed."""
    res = json.loads((REPO_ROOT / "experiments/results/topology_routes.json").read_text())
    for k in ("correct", "reward"):
        g = res["classifier_minus_edges"][k]
        assert g["gap"] == pytest.approx(res["classifier"][k] - res["edges"][k], abs=2e-4)
        p = 2 * sps.t.sf(g["gap"] / g["se"], df=g["n"] - 1)
        assert p == pytest.approx(g["p_value"], abs=0.25 * g["p_value"])  # from values rounded to 4 places
    seeds = res["per_seed"]
    assert len(seeds) == res["seeds"] and all(s["classifier"]["accuracy"] > s["edges"]["accuracy"] for s in seeds)
    assert np.mean([s["classifier"]["accuracy"] for s in seeds]) == pytest.approx(res["classifier"]["correct"], abs=2e-4)
    if "per_query" in res:
        for k in ("correct", "reward"):
            gap = paired_gap(res["per_query"]["classifier"][k], res["per_query"]["edges"][k]).to_dict()
            assert gap == pytest.approx(res["classifier_minus_edges"][k], abs=1e-4)
    text = " ".join((REPO_ROOT / "docs/RESULTS.md").read_text().split())
    g = res["classifier_minus_edges"]["correct"]
    assert f"+{g['gap']:.4f} ± {g['se']:.4f} (p = {g['p_value']:.3f})" in text
