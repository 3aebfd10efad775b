"""The generic jsonl task and the task registry: bring your own task with no package edits."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks import get_task, register_task, task_from_config
from hieramas_gnn.tasks.generic import GenericTask, answer_line, make_scorer


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def capitals(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "capitals.jsonl", [
        {"question": "Capital of France?", "answer": "Paris", "domain": "europe"},
        {"id": "jp", "question": "Capital of Japan?", "answer": "Tokyo"},
    ])


def test_rows_become_questions_with_default_ids_and_domains(capitals):
    qs = GenericTask("capitals", capitals).load()
    assert [q.id for q in qs] == ["capitals/0", "jp"]
    assert [q.meta["domain"] for q in qs] == ["europe", "general"]
    assert qs[0].task == "capitals" and qs[0].gold == "Paris"


def test_exact_scorer_reads_the_answer_line_ignoring_case_and_markdown(capitals):
    task = GenericTask("capitals", capitals)
    q = task.load()[0]
    assert task.score("Let me think.\n**Answer:** paris.", q).correct
    assert not task.score("Let me think.\nAnswer: Lyon", q).correct
    assert task.score("Paris", q).correct  # a one-line reply is its own answer
    assert task.score("I think\nit is Paris", q).extracted is None


def test_numeric_scorer_compares_numbers(tmp_path):
    task = GenericTask("nums", _jsonl(tmp_path / "n.jsonl", [{"question": "1200?", "answer": 1200}]), "numeric")
    q = task.load()[0]
    assert task.score("so...\nAnswer: $1,200.00", q).correct
    assert not task.score("Answer: 1201", q).correct


def test_numeric_scorer_rejects_a_gold_that_is_not_a_number(tmp_path):
    task = GenericTask("nums", _jsonl(tmp_path / "n.jsonl", [{"question": "?", "answer": "Paris"}]), "numeric")
    with pytest.raises(UserError, match="question 1: field 'answer' 'Paris' is not a number"):
        task.load()


def test_choice_scorer_accepts_gold_as_letter_index_or_choice_text(tmp_path):
    rows = [{"question": "2+2?", "choices": ["3", "4", "5"], "answer": a} for a in ("B", 1, "4")]
    task = GenericTask("mc", _jsonl(tmp_path / "mc.jsonl", rows), "choice")
    qs = task.load()
    assert [q.gold for q in qs] == ["B", "B", "B"]
    assert "B. 4" in qs[0].text
    assert task.score("The answer is (B).", qs[0]).correct
    assert not task.score("Answer: C", qs[0]).correct


def test_choice_scorer_without_choices_names_the_question(tmp_path):
    task = GenericTask("mc", _jsonl(tmp_path / "mc.jsonl", [{"question": "x", "answer": "A"}]), "choice")
    with pytest.raises(UserError, match=r"mc.jsonl: question 1: the choice scorer needs a 'choices' list"):
        task.load()


def test_regex_scorer_extracts_the_last_match_group(tmp_path):
    task = GenericTask("rx", _jsonl(tmp_path / "r.jsonl", [{"question": "code?", "answer": "X-42"}]),
                       r"regex:<answer>(.+?)</answer>")
    q = task.load()[0]
    assert task.score("<answer>X-1</answer> no wait <answer>x-42</answer>", q).correct
    assert task.extract(task.render_answer("X-42", q), q) == "X-42"  # the sim backend writes replies so


def test_regex_scorer_says_when_the_backends_cannot_write_replies_for_it(tmp_path):
    task = GenericTask("rx", _jsonl(tmp_path / "r.jsonl", [{"question": "code?", "answer": "X-42"}]),
                       r"regex:CODE\[(\S+)\]")
    q = task.load()[0]
    assert task.score("CODE[X-42]", q).correct
    with pytest.raises(UserError, match="cannot write a reply the pattern reads back"):
        task.render_answer("X-42", q)


def test_python_callable_scorer_grades_the_answer_line(tmp_path, monkeypatch):
    (tmp_path / "my_grader.py").write_text("def close(answer, q):\n    return answer.lower().startswith(q.gold[:3].lower())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = GenericTask("g", _jsonl(tmp_path / "g.jsonl", [{"question": "?", "answer": "Paris"}]), "my_grader:close")
    q = task.load()[0]
    assert task.score("Answer: PARis, France", q).correct
    assert not task.score("Answer: Rome", q).correct


@pytest.mark.parametrize("spec, message", [
    ("fuzzy", "unknown scorer 'fuzzy'"),
    ("regex:(", "not a valid regular expression"),
    ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
])
def test_bad_scorer_names_are_clear_errors(spec, message):
    with pytest.raises(UserError, match=message):
        make_scorer(spec)


@pytest.mark.parametrize("row, message", [
    ({"question": "x"}, "question 1: field 'answer' is missing or empty"),
    ({"question": " ", "answer": "a"}, "question 1: field 'question' is missing or empty"),
    ({"question": "x", "answer": "a", "gold": 1}, "question 1: unknown field 'gold'"),
    ({"question": "x", "answer": ["a", "b"]}, "field 'answer' must be one string or number"),
])
def test_bad_rows_name_file_question_and_field(tmp_path, row, message):
    task = GenericTask("t", _jsonl(tmp_path / "t.jsonl", [row]))
    with pytest.raises(UserError, match=message):
        task.load()


def test_duplicate_ids_are_an_error(tmp_path):
    task = GenericTask("t", _jsonl(tmp_path / "t.jsonl", [{"id": "a", "question": "x", "answer": "1"}] * 2))
    with pytest.raises(UserError, match="question 2: duplicate id 'a' \\(also question 1\\)"):
        task.load()


def test_answer_line_takes_the_last_one():
    assert answer_line("Answer: 1\nmore thought\nANSWER : 2") == "2"


def test_task_from_config_registers_the_generic_task_for_the_backends(capitals):
    task = task_from_config(SimpleNamespace(name="capitals", path=str(capitals), scorer="exact"))
    assert get_task("capitals") is task  # what sim/replay look a question up with
    assert get_task("capitals").get("jp").gold == "Tokyo"


def test_generic_task_needs_a_path():
    with pytest.raises(UserError, match="task.path"):
        task_from_config(SimpleNamespace(name="capitals", path=None, scorer="exact"))


def test_builtin_names_cannot_be_taken(capitals):
    with pytest.raises(UserError, match="'gsm8k' is a built-in benchmark"):
        register_task(GenericTask("gsm8k", capitals))


def test_module_object_task_is_built_and_registered_under_its_name(tmp_path, monkeypatch, capitals):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent(f"""
        from hieramas_gnn.tasks.generic import GenericTask
        class Capitals(GenericTask):
            def __init__(self):
                super().__init__("my_capitals", {str(capitals)!r}, "exact")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    task = task_from_config(SimpleNamespace(name="my_tasks:Capitals", path=None, scorer=None))
    assert task.name == "my_capitals" and get_task("my_capitals") is task


def test_module_object_that_is_not_a_task_names_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "not_a_task.py").write_text("class T:\n    name = 'x'\n    family = 'general'\n    answer_kind = 'text'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match=r"needs a method load\(\)"):
        get_task("not_a_task:T")


def test_entry_point_tasks_are_found_by_name(monkeypatch, capitals):
    from hieramas_gnn import tasks as registry

    ep = SimpleNamespace(name="ep_capitals", load=lambda: (lambda: GenericTask("ep_capitals", capitals)))
    monkeypatch.setattr(registry, "_entry_points", lambda: {"ep_capitals": ep})
    assert get_task("ep_capitals").get("jp").gold == "Tokyo"
    assert "ep_capitals" in registry.task_names()


def test_unknown_task_lists_the_ways_to_bring_one():
    with pytest.raises(UserError, match="unknown task 'nope'.*module:object"):
        get_task("nope")


def test_a_task_file_names_a_jsonl_task_for_commands_that_take_a_task_name(tmp_path, capitals):
    spec = tmp_path / "sub" / "capitals.yaml"
    spec.parent.mkdir()
    spec.write_text("name: capitals_from_file\npath: ../capitals.jsonl\nscorer: exact\n")
    task = get_task(str(spec))
    assert task.name == "capitals_from_file" and get_task("capitals_from_file") is task
    assert task.get("jp").gold == "Tokyo"  # path relative to the task file


def test_a_task_file_with_a_typo_names_the_field(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\npath: q.jsonl\nscorrer: exact\n")
    with pytest.raises(UserError, match="t.yaml: unknown field 'scorrer'"):
        get_task(str(spec))
