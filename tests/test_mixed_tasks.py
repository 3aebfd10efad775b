"""Mixed tasks (`tasks/mix.py`) and the recorded-outcome slices (`tasks/recorded.py`): what they
load, how they grade, and the authors' train/test split (`split_by: source`)."""

from __future__ import annotations

from collections import Counter

import pytest

from hieramas_gnn.config import load_config
from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.paths import REPO_ROOT
from hieramas_gnn.tasks import get_task, task_from_config
from hieramas_gnn.tasks.mix import MixTask, mix_from_components
from hieramas_gnn.tasks.recorded import NO_RECORDED_ANSWER, RIGHT, letter_of, question_text
from tests.conftest import require_shared

QUICK = REPO_ROOT / "experiments" / "configs" / "demo_quick.yaml"


def _mix_cfg(*overrides: str):
    return load_config(QUICK, ["task.name=mix", "task.train_size=20", "task.val_size=10", "task.test_size=20",
                               *overrides])


def test_a_mix_tags_each_question_with_its_component():
    mix = mix_from_components("mix", [{"name": "synthetic_arith", "size": 12}, {"name": "synthetic_mc", "size": 8}], get_task)
    qs = mix.load()
    assert Counter(q.meta["component"] for q in qs) == {"synthetic_arith": 12, "synthetic_mc": 8}
    assert all(q.meta["domain"] == q.meta["component"] == q.task for q in qs)
    assert mix.component_names == ["synthetic_arith", "synthetic_mc"]
    assert mix.get(qs[-1].id).meta["component"] == "synthetic_mc"


def test_a_mix_grades_and_prompts_each_question_as_its_component_does():
    mix = mix_from_components("mix", [{"name": "synthetic_arith", "size": 3}, {"name": "synthetic_mc", "size": 3}], get_task)
    qs = mix.load()
    for q in qs:
        part = get_task(q.task)
        assert mix.instruction_for(q) == part.instruction()
        reply = part.render_answer(str(q.gold), q)
        assert mix.score(reply, q).correct and mix.is_correct(part.extract(reply, q), q)
    assert mix.instruction_for(qs[0]) != mix.instruction_for(qs[-1])


def test_a_component_size_takes_a_fixed_subset_whatever_the_order():
    a = mix_from_components("mix", [{"name": "synthetic_arith", "size": 10}], get_task).load()
    b = mix_from_components("mix", [{"name": "synthetic_arith", "size": 10}], get_task).load()
    assert [q.id for q in a] == [q.id for q in b]


def test_bad_components_are_named():
    with pytest.raises(ConfigError, match="size 100000"):
        mix_from_components("mix", [{"name": "synthetic_arith", "size": 100000}], get_task).load()
    with pytest.raises(ConfigError, match="twice"):
        mix_from_components("mix", [{"name": "synthetic_mc"}, {"name": "synthetic_mc"}], get_task)
    with pytest.raises(ConfigError, match="mixed task"):
        mix_from_components("mix", [{"name": "routerdc"}], get_task)
    with pytest.raises(UserError, match="unknown task"):
        mix_from_components("mix", [{"name": "nope"}], get_task)


def test_the_config_builds_and_checks_a_mix():
    cfg = _mix_cfg("task.components=[{name: synthetic_arith, size: 30}, {name: synthetic_mc, size: 30}]")
    task = task_from_config(cfg.task)
    assert isinstance(task, MixTask) and get_task("mix") is task
    with pytest.raises(ConfigError, match="components: required"):
        _mix_cfg()
    with pytest.raises(ConfigError, match=r"components\[0\].size"):
        _mix_cfg("task.components=[{name: synthetic_mc, size: 0}]")
    with pytest.raises(ConfigError, match="only used with name: mix"):
        load_config(QUICK, ["task.components=[{name: synthetic_mc}]"])


def test_the_split_stratifies_on_the_component():
    from hieramas_gnn.build import load_questions

    cfg = _mix_cfg("task.components=[{name: synthetic_arith, size: 25}, {name: synthetic_mc, size: 25}]")
    train, val, test, _ = load_questions(cfg)
    assert Counter(q.meta["component"] for q in test) == {"synthetic_arith": 10, "synthetic_mc": 10}
    assert not {q.id for q in test} & {q.id for q in train + val}


def test_source_split_needs_a_task_with_train_files():
    from hieramas_gnn.build import load_questions

    with pytest.raises(ConfigError, match="no train split"):
        load_questions(load_config(QUICK, ["task.split_by=source"]))


def test_letters_and_question_text_of_routerbench_replies():
    assert [letter_of(r, 4) for r in ("A", "B) wet palms", "(C)", "I do not know", "E", "")] == \
        ["A", "B", "C", None, None, None]
    assert question_text("Q1\nA) x\nAnswer:\nA\n\nQ2\nA) y\nAnswer:") == "Q2\nA) y\nAnswer:"


# ------------------------------------------------------------------ ../shared/data


def test_routerdc_has_the_authors_files():
    require_shared("outcomes/routerdc_7models_questions.jsonl.gz")
    task = get_task("routerdc")
    sizes = {s: Counter(q.meta["domain"] for q in task.load(split=s)) for s in ("train", "test")}
    assert sizes["test"] == {"mmlu": 4213, "gsm8k": 1319, "arc": 352, "humaneval": 49}
    assert sizes["train"] == {"mmlu": 2000, "gsm8k": 1000, "arc": 820, "humaneval": 115}
    ood = get_task("routerdc_ood")
    assert Counter(q.meta["domain"] for q in ood.load(split="test")) == {"math_prealgebra": 871, "mbpp": 500}
    assert len(ood.load(split="train")) == 3935  # trains in distribution
    q = task.load(split="test")[0]
    assert q.gold == RIGHT and task.score("Answer: right", q).correct and not task.score("Answer: wrong-1", q).correct


def test_routerbench_golds_are_the_letters_the_right_models_gave():
    require_shared("outcomes/routerbench_subset_prompts.jsonl.gz", "outcomes/routerbench_subset.csv.gz")
    task = get_task("routerbench")
    test = task.load(split="test")
    assert Counter(q.meta["domain"] for q in test) == {"arc": 444, "winogrande": 380, "mbpp": 128}
    assert len(task.load(split="train")) == 2212
    golds = Counter(q.gold for q in test)
    assert golds[RIGHT] == 128 and golds[NO_RECORDED_ANSWER] < 10
    arc = next(q for q in test if q.meta["domain"] == "arc" and q.gold == "B")
    assert task.score("B) something", arc).correct and not task.score("A", arc).correct


def test_routerdc_source_split_draws_train_val_from_train_files():
    require_shared("outcomes/routerdc_7models_questions.jsonl.gz")
    from hieramas_gnn.build import load_questions

    cfg = load_config(QUICK, ["task.name=routerdc", "task.split_by=source", "task.train_size=200",
                              "task.val_size=50", "task.test_size=5933"])
    train, val, test, _ = load_questions(cfg)
    assert {q.meta["split"] for q in train + val} == {"train"} and {q.meta["split"] for q in test} == {"test"}
    assert len(test) == 5933 and Counter(q.meta["domain"] for q in val)["mmlu"] == 25
