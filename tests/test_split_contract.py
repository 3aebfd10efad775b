"""`tasks/splits.py` by its contract: defaults, what a Split records in each mode, the held-out
domain count, and every error naming what is wrong."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hieramas_gnn.errors import ConfigError
from hieramas_gnn.tasks.base import Question
from hieramas_gnn.tasks.splits import SPLIT_BY, held_out_domains, split_questions, stratified_order


def _file(sizes: dict[str, int]) -> list[Question]:
    return [Question(f"{d}/{i}", "t", f"q {d} {i}", "A", {"domain": d}) for d, n in sizes.items() for i in range(n)]


def _ids(qs):
    return [q.id for q in qs]


def test_the_defaults_are_seed_0_random_and_a_quarter_of_the_domains():
    qs = _file({d: 10 for d in "abcdefgh"})
    default, seeded = split_questions(qs, (5, 5, 5)), split_questions(qs, (5, 5, 5), seed=0)
    assert _ids(default.train) == _ids(seeded.train) and (default.split_by, default.seed) == ("random", 0)
    by_domain = split_questions(qs, (10, 5, 5), split_by="domain")
    assert len(by_domain.test_domains) == 2  # 0.25 of 8


@pytest.mark.parametrize("split_by", ["random", "domain", "consecutive"])
def test_a_split_records_how_it_was_drawn(split_by):
    s = split_questions(_file({"a": 20, "b": 20}), (6, 4, 5), split_by=split_by, seed=7)
    d = s.to_dict()
    assert (s.split_by, s.seed, d["split_by"], d["seed"]) == (split_by, 7, split_by, 7)
    assert d["sizes"] == {"train": 6, "val": 4, "test": 5}


@pytest.mark.parametrize("n_domains, fraction, held", [(2, 0.25, 1), (4, 0.25, 1), (8, 0.25, 2), (3, 0.9, 2),
                                                       (4, 1.0, 3), (5, 0.0, 1)])
def test_held_out_domain_count_is_a_rounded_fraction_at_least_one_never_all(n_domains, fraction, held):
    domains = [f"d{i}" for i in range(n_domains)]
    for seed in range(20):
        got = held_out_domains(domains, (), fraction, np.random.default_rng(seed))
        assert len(got) == len(set(got)) == held and set(got) <= set(domains) and got == sorted(got)


def test_every_domain_can_be_held_out():
    domains = [f"d{i}" for i in range(4)]
    seen = Counter(d for s in range(100) for d in held_out_domains(domains, (), 0.25, np.random.default_rng(s)))
    assert set(seen) == set(domains)


@pytest.mark.parametrize("call, message", [
    (lambda: split_questions(_file({"a": 9}), (2, 2, 2), split_by="halves"),
     f"task.split_by: must be one of {SPLIT_BY}, got 'halves'"),
    (lambda: split_questions(_file({"a": 3}) + _file({"a": 1}), (1, 1, 1)),
     "task: question ids are not unique; a split cannot be written by id"),
    (lambda: split_questions(_file({"a": 9, "b": 9}), (2, 2, 2), split_by="domain", test_domains=["a", "b"]),
     "task.test_domains: holds out every domain; none is left to train on"),
    (lambda: split_questions(_file({"a": 9}), (2, 2, 2), split_by="domain"),
     "task.split_by=domain needs at least 2 domains, the split has ['a']"),
    (lambda: split_questions(_file({"a": 4}), (3, 2, 1)),
     "task.train_size + val_size + test_size = 6: need 6 questions, only 4 available"),
    (lambda: split_questions(_file({"a": 4}), (3, 2, 1), split_by="consecutive"),
     "task.train_size + val_size + test_size = 6: need 6 questions, only 4 available"),
    (lambda: split_questions(_file({"a": 4, "b": 30}), (4, 3, 2), split_by="domain", test_domains=["b"]),
     "task.train_size + val_size = 7 from the training domains: need 7 questions, only 4 available"),
])
def test_each_error_names_what_is_wrong(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert str(err.value) == message


def test_the_first_question_comes_from_each_domain_in_proportion_to_its_size():
    """Every prefix holds each domain in its share, the first item too: a domain of 90 of 100
    questions opens the order about 94% of the time (P(u_a / 90 < u_b / 10) = 1 - 1/18)."""
    qs = _file({"a": 90, "b": 10})
    first_a = sum(stratified_order(qs, np.random.default_rng(s))[0].meta["domain"] == "a" for s in range(400))
    assert 0.88 < first_a / 400 < 0.99, first_a
