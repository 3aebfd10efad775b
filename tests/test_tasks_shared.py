"""Extractors against real graded model outputs in ../shared/data, and the real loaders.

The agreement figures are documented in docs/TASKS.md; `scripts/check_extractors.py` prints the
disagreements one by one.
"""

from __future__ import annotations

import pytest

from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.agreement import gsm8k_agreement, mmlu_redux_agreement


@pytest.fixture(scope="module")
def gsm8k_report():
    from tests.conftest import require_shared
    root = require_shared("outcomes/raw/gsm8k_zeroeval_outputs.jsonl.gz", "outcomes/gsm8k_zeroeval.csv.gz")
    return gsm8k_agreement(root)


@pytest.fixture(scope="module")
def redux_report():
    from tests.conftest import require_shared
    return mmlu_redux_agreement(require_shared("outcomes/mmlu_redux_helm14.csv.gz"))


def test_gsm8k_scorer_agrees_with_reference_on_99_percent_of_real_replies(gsm8k_report):
    assert gsm8k_report["n"] == 54760
    assert gsm8k_report["agreement"] >= 0.99


def test_gsm8k_disagreements_all_have_a_known_cause(gsm8k_report):
    assert "other" not in gsm8k_report["causes"]


def test_mmlu_redux_letters_agree_with_reference_on_99_percent(redux_report):
    assert redux_report["n"] == 79800
    assert redux_report["agreement"] >= 0.99


def test_gsm8k_loads_1319_with_gold_numbers(shared_data):
    qs = get_task("gsm8k").load()
    assert len(qs) == 1319 and qs[0].id == "gsm8k/test/0" and qs[0].gold == "18"
    assert all(q.meta["domain"] == "arithmetic" and q.meta["difficulty"] >= 1 for q in qs)


def test_mmlu_loads_14042_with_subjects(shared_data):
    qs = get_task("mmlu").load()
    assert len(qs) == 14042 and len({q.meta["domain"] for q in qs}) == 57
    assert all(q.gold in "ABCD" for q in qs)


def test_mmlu_redux_keeps_error_type_and_can_drop_flagged_items(shared_data):
    task = get_task("mmlu_redux")
    every, ok = task.load(), task.load(only_ok=True)
    assert len(every) == 5700 and len(ok) == 5330
    assert {q.meta["error_type"] for q in every} >= {"ok", "wrong_groundtruth"}


def test_get_finds_a_question_by_id_and_names_an_unknown_one(shared_data):
    from hieramas_gnn.errors import UserError
    task = get_task("gsm8k")
    assert task.get("gsm8k/test/5").id == "gsm8k/test/5"
    with pytest.raises(UserError, match="gsm8k/test/999999"):
        task.get("gsm8k/test/999999")


def test_gold_rendered_as_reply_scores_correct_for_every_real_question(shared_data):
    for name in ("gsm8k", "mmlu_redux", "math_l5"):
        task = get_task(name)
        assert all(task.score(task.render_answer(str(q.gold), q), q).correct for q in task.load()), name
