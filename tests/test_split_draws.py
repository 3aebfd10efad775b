"""The seeded split draws each part uniformly within every domain: over many seeds every question
is in train equally often, whatever its place in the task file (checked with a chi-square test)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats as sps

from hieramas_gnn.tasks.base import Question
from hieramas_gnn.tasks.splits import split_questions, stratified_order


def _file(sizes: dict[str, int]) -> list[Question]:
    return [Question(f"{d}/{i}", "t", f"q {d} {i}", "A", {"domain": d}) for d, n in sizes.items() for i in range(n)]


def test_every_question_is_drawn_into_train_equally_often_over_seeds():
    qs = _file({"a": 12, "b": 8})
    seeds = 300
    counts = Counter(q.id for s in range(seeds) for q in split_questions(qs, (5, 5, 5), seed=s).train)
    observed = np.array([counts[q.id] for q in qs])
    # stratified: train holds 3 of a's 12 and 2 of b's 8, a quarter of each domain every time
    expected = np.array([seeds * 0.25] * 20)
    assert observed.sum() == expected.sum()
    assert sps.chisquare(observed, expected).pvalue > 1e-3, observed


def test_train_is_not_the_head_of_each_domain():
    qs = _file({"a": 30, "b": 30})
    heads = {f"{d}/{i}" for d in "ab" for i in range(5)}
    for seed in range(5):
        train = {q.id for q in split_questions(qs, (10, 10, 10), seed=seed).train}
        assert train != heads and len(train & heads) < 8, (seed, sorted(train))


def test_the_order_within_one_domain_is_a_uniform_permutation():
    qs = _file({"a": 4})
    firsts = Counter(stratified_order(qs, np.random.default_rng(s))[0].id for s in range(400))
    assert sps.chisquare([firsts[q.id] for q in qs]).pvalue > 1e-3, firsts


def test_which_domain_gets_the_odd_place_is_drawn_not_taken_from_the_file_order():
    """Two domains of equal size and a train part of 5: each domain gets the third place of its
    pair about half the time (never always the first domain of the file)."""
    qs = _file({"a": 10, "b": 10})
    more_a = sum(sum(q.meta["domain"] == "a" for q in split_questions(qs, (5, 5, 5), seed=s).train) == 3
                 for s in range(200))
    assert sps.binomtest(more_a, 200, 0.5).pvalue > 1e-3, more_a
