"""Seeded, domain-stratified splits (`tasks/splits.py`) and `build.load_questions`."""

import json
from collections import Counter

import pytest

from hieramas_gnn.config import load_config
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.tasks.base import Question
from hieramas_gnn.tasks.splits import split_questions
from hieramas_gnn.build import load_questions


def _sorted_by_domain(sizes: dict[str, int]) -> list[Question]:
    """A file sorted by domain, as MMLU-Redux is by subject."""
    return [Question(f"{d}/{i}", "t", f"q {d} {i}", "A", {"domain": d})
            for d, n in sizes.items() for i in range(n)]


def _ids(qs):
    return [q.id for q in qs]


def test_random_split_is_disjoint_and_of_the_asked_sizes():
    s = split_questions(_sorted_by_domain({"a": 50, "b": 50}), (30, 10, 40), seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 10, 40)
    assert len(set(_ids(s.train)) | set(_ids(s.val)) | set(_ids(s.test))) == 80


def test_random_split_is_stratified_by_domain_on_a_sorted_file():
    s = split_questions(_sorted_by_domain({"a": 100, "b": 60, "c": 40}), (100, 20, 80), seed=1)
    for part, n in ((s.train, 100), (s.test, 80)):
        counts = Counter(q.meta["domain"] for q in part)
        for d, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
            assert abs(counts[d] - share * n) <= 1, (d, counts)


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    qs = _sorted_by_domain({"a": 40, "b": 40})
    a, b, c = (split_questions(qs, (20, 10, 20), seed=s) for s in (3, 3, 4))
    assert _ids(a.train) == _ids(b.train) and _ids(a.test) == _ids(b.test)
    assert _ids(a.train) != _ids(c.train)


def test_consecutive_split_keeps_the_file_order():
    qs = _sorted_by_domain({"a": 10})
    s = split_questions(qs, (4, 2, 3), split_by="consecutive")
    assert _ids(s.train) == _ids(qs[:4]) and _ids(s.val) == _ids(qs[4:6]) and _ids(s.test) == _ids(qs[6:9])


def test_domain_split_tests_only_on_the_held_out_domains():
    s = split_questions(_sorted_by_domain({"a": 30, "b": 30, "c": 30}), (20, 10, 25), split_by="domain",
                        test_domains=["c"])
    assert {q.meta["domain"] for q in s.test} == {"c"}
    assert "c" not in {q.meta["domain"] for q in s.train + s.val}
    assert s.to_dict()["test_domains"] == ["c"]


def test_domain_split_without_names_holds_out_a_seeded_fraction():
    qs = _sorted_by_domain({d: 20 for d in "abcdefgh"})
    s = split_questions(qs, (40, 10, 20), split_by="domain", seed=2, test_domain_fraction=0.25)
    assert len(s.test_domains) == 2
    assert {q.meta["domain"] for q in s.test} <= set(s.test_domains)
    assert not {q.meta["domain"] for q in s.train} & set(s.test_domains)


def test_an_unknown_held_out_domain_is_named():
    with pytest.raises(ConfigError, match=r"task\.test_domains: unknown domains \['z'\]"):
        split_questions(_sorted_by_domain({"a": 9, "b": 9}), (2, 2, 2), split_by="domain", test_domains=["z"])


def test_too_few_questions_in_the_held_out_domains_is_a_clear_error():
    with pytest.raises(ConfigError, match="task.test_size = 20 from the held-out domains"):
        split_questions(_sorted_by_domain({"a": 30, "b": 5}), (5, 5, 20), split_by="domain", test_domains=["b"])


def test_load_questions_draws_a_seeded_split_and_writes_split_json(tmp_path):
    cfg = load_config(None, ["task.name=synthetic", "task.train_size=12", "task.val_size=4",
                             "task.test_size=8", "task.split_seed=5", "run.seed=1"])
    train, val, test, _task = load_questions(cfg, run_dir=tmp_path)
    written = json.loads((tmp_path / "split.json").read_text())
    assert written["train"] == _ids(train) and written["val"] == _ids(val) and written["test"] == _ids(test)
    assert (written["split_by"], written["seed"]) == ("random", 5)
    again, _, _, _ = load_questions(cfg)
    assert _ids(again) == _ids(train)


def test_load_questions_by_domain_holds_the_named_domain_out():
    cfg = load_config(None, ["task.name=synthetic", "task.train_size=10", "task.val_size=4",
                             "task.test_size=6", "task.split_by=domain"])
    train, _val, test, task = load_questions(cfg)
    held = {q.meta["domain"] for q in test}
    assert len(held) >= 1 and not held & {q.meta["domain"] for q in train}


def test_test_domains_without_split_by_domain_is_rejected():
    with pytest.raises(ConfigError, match="task.test_domains: only used with split_by: domain"):
        load_config(None, ["task.test_domains=[a]"])
