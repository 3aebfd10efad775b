"""Task registry, extraction rules of GSM8K / MMLU / synthetic, and the render_answer round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks import TASK_NAMES, Question, get_task
from hieramas_gnn.tasks.answers import canonical_number, choice_letter, json_answer, last_boxed
from hieramas_gnn.tasks.gsm8k import extract_number, gold_from_solution
from hieramas_gnn.tasks.synthetic import make_question

MC_Q = Question(id="mmlu/x/0", task="mmlu", text="Q?\n\nA. red\nB. blue\nC. green\nD. four",
                gold="B", meta={"domain": "x", "choices": ["red", "blue", "green", "four"]})
NUM_Q = Question(id="gsm8k/test/0", task="gsm8k", text="Q?", gold="18", meta={"domain": "arithmetic"})


# -- registry ----------------------------------------------------------------------------------

def test_registry_lists_the_contract_names():
    for name in ("gsm8k", "math500", "math_l5", "mmlu", "mmlu_redux", "humaneval", "humaneval_plus",
                 "synthetic", "synthetic_arith", "synthetic_mc"):
        assert name in TASK_NAMES


def test_unknown_task_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="nosuch"):
        get_task("nosuch")


def test_get_task_returns_one_instance_per_name():
    assert get_task("gsm8k") is get_task("gsm8k")


def test_importing_registry_does_not_import_families():
    """A benchmark family's module (its data readers, sandbox, answer checkers) loads on first use only."""
    import subprocess
    import sys

    from hieramas_gnn.tasks import _REGISTRY
    families = sorted({f"hieramas_gnn.tasks.{module}" for module, _, _ in _REGISTRY.values()} - {"hieramas_gnn.tasks.mix"})
    assert "hieramas_gnn.tasks.gsm8k" in families
    code = "import sys, hieramas_gnn.tasks; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))
    assert [m for m in families if m in loaded] == []


# -- numbers / GSM8K ---------------------------------------------------------------------------

@pytest.mark.parametrize("reply,expected", [
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ('{"reasoning": "9 eggs at $2", "answer": "$18"}', "18"),
    ('```json\n{"reasoning": "...", "answer": 1200}\n```', "1200"),
    ("The total is \\boxed{1,200}.", "1200"),
    ("So the answer is $1,234.50.", "1234.5"),
    ("The answer is 42 apples.", "42"),
    ("Answer: 7 dollars", "7"),
    ("First 3, then 5, finally 12", "12"),
    ('{"answer": "9 x $2 = $18"}', "18"),
    ("#### -5", "-5"),
    ("It costs 18.00 dollars.", "18"),
    ("no number here", None),
])
def test_gsm8k_extracts_the_final_number(reply, expected):
    assert extract_number(reply) == expected


def test_gsm8k_gold_is_the_number_after_hashes():
    assert gold_from_solution("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 1,018") == "1018"


def test_gsm8k_scores_equal_numbers_correct_and_others_wrong():
    task = get_task("gsm8k")
    assert task.score("so #### 18.0", NUM_Q).correct
    assert not task.score("so #### 19", NUM_Q).correct
    assert not task.score("", NUM_Q).correct


def test_canonical_number_strips_money_and_commas():
    assert canonical_number(" $1,200.50 ") == "1200.5"
    assert canonical_number("abc") is None


def test_json_answer_survives_truncated_json():
    assert json_answer('{"reasoning": "blah blah", "answer": "17"') == "17"


def test_last_boxed_balances_braces():
    assert last_boxed(r"so \boxed{\frac{1}{2}} and finally \boxed{\frac{3}{4}}.") == r"\frac{3}{4}"


# -- MMLU letters ------------------------------------------------------------------------------

@pytest.mark.parametrize("reply,expected", [
    ("(B)", "B"), ("B", "B"), ("B.", "B"), ("**B**", "B"), ("Answer: B", "B"),
    ("The answer is (C).", "C"), ("Reasoning ... the correct answer is D", "D"),
    ("Thinking about (A) and (B)... The answer is (A).", "A"), ('{"answer": "C"}', "C"),
    ("C) green, because ...", "C"), ("\\boxed{D}", "D"), ("answer is (b)", "B"),
    ("blue", "B"), ("The", None), ("", None), ("A good question; I am not sure.", None),
    ("The answer is a bit unclear", None),
])
def test_mmlu_extracts_the_letter(reply, expected):
    assert choice_letter(reply, "ABCD", MC_Q.meta["choices"]) == expected


def test_mmlu_scores_against_gold_letter():
    task = get_task("mmlu")
    assert task.score("The answer is (B).", MC_Q) == task.score("B", MC_Q)
    assert task.score("B", MC_Q).correct and not task.score("C", MC_Q).correct


# -- synthetic ---------------------------------------------------------------------------------

def test_synthetic_item_regenerates_from_its_id():
    task = get_task("synthetic")
    for q in task.load(limit=12):
        again = task.get(q.id)
        assert (again.text, again.gold, again.meta) == (q.text, q.gold, q.meta)


def test_synthetic_splits_share_no_question():
    task = get_task("synthetic")

    def key(q):  # stem + set of choices: the same question whatever the option order
        return (q.text.split("\n\n")[0], frozenset(q.meta.get("choices", [])))
    stems = {split: {key(q) for q in task.load(split=split)} for split in ("train", "val", "test")}
    assert not stems["train"] & stems["test"] and not stems["val"] & stems["test"] and not stems["train"] & stems["val"]


def test_synthetic_covers_domains_and_difficulties():
    qs = get_task("synthetic").load()
    assert {q.meta["domain"] for q in qs} == {"arithmetic", "physics", "units", "logic", "history", "biology"}
    assert {q.meta["difficulty"] for q in qs} == {1, 2, 3}


def test_synthetic_gold_answers_are_right_for_known_items():
    q = make_question("arithmetic", 3, 0)  # "Dara has 15 pencils. Kofi gives Dara 32 more."
    nums = [int(t) for t in q.text.replace(".", " ").split() if t.isdigit()]
    assert int(q.gold) == sum(nums)


def test_synthetic_bad_id_is_a_user_error():
    with pytest.raises(UserError, match="synthetic/nosuch"):
        get_task("synthetic").get("synthetic/nosuch/1/2")


def test_synthetic_takes_no_path():
    with pytest.raises(UserError, match="no data path"):
        get_task("synthetic").load(path="x.jsonl")


# -- render_answer round trip (the sim backend writes replies with it) -------------------------

@settings(max_examples=60, deadline=None)
@given(value=st.integers(min_value=-10**9, max_value=10**9))
def test_gsm8k_render_round_trips_integers(value):
    task = get_task("gsm8k")
    q = Question(id="gsm8k/test/0", task="gsm8k", text="?", gold=str(value), meta={"domain": "arithmetic"})
    reply = task.render_answer(str(value), q)
    assert task.extract(reply, q) == str(value)
    assert task.score(reply, q).correct


@settings(max_examples=30, deadline=None)
@given(letter=st.sampled_from("ABCD"), choices=st.lists(st.text(min_size=1, max_size=30), min_size=4, max_size=4))
def test_mmlu_render_round_trips_letters(letter, choices):
    task = get_task("mmlu")
    q = Question(id="mmlu/x/1", task="mmlu", text="?", gold="A", meta={"domain": "x", "choices": choices})
    assert task.extract(task.render_answer(letter, q), q) == letter


@settings(max_examples=40, deadline=None)
@given(domain=st.sampled_from(["arithmetic", "physics", "units", "logic", "history", "biology"]),
       seed=st.integers(0, 10**6), index=st.integers(0, 10**4))
def test_synthetic_render_of_gold_scores_correct(domain, seed, index):
    task = get_task("synthetic")
    q = make_question(domain, seed, index)
    reply = task.render_answer(q.gold, q)
    assert task.extract(reply, q) == q.gold and task.score(reply, q).correct
