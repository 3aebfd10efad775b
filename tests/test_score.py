"""`hieramas score` and `hieramas tasks`: the CLI over the task scorers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieramas_gnn.cli import main
from hieramas_gnn.tasks import get_task


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _score_canonical(tmp_path, questions) -> dict:
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": q.id, "completion": q.gold} for q in questions])
    assert main(["score", "humaneval", "--samples", str(samples), "--json", str(tmp_path / "o.json")]) == 0
    return json.loads((tmp_path / "o.json").read_text())


@pytest.mark.heavy
def test_score_humaneval_canonical_completions_pass_164_of_164(tmp_path, capsys):
    summary = _score_canonical(tmp_path, get_task("humaneval").load())
    assert (summary["n"], summary["correct"], summary["accuracy"]) == (164, 164, 1.0)
    assert "pass@1 1.0000 (164/164)" in capsys.readouterr().out


def test_score_humaneval_canonical_completions_of_every_4th_question_pass(tmp_path, capsys):
    """The fast variant of the one above (all 164 run ~20 s of sandboxed CPU)."""
    summary = _score_canonical(tmp_path, get_task("humaneval").load()[::4])
    assert (summary["n"], summary["correct"], summary["accuracy"]) == (41, 41, 1.0)
    assert "pass@1 1.0000 (41/41)" in capsys.readouterr().out


def test_score_humaneval_accepts_fenced_responses(tmp_path):
    q = get_task("humaneval").get("HumanEval/2")
    good = f"```python\n{q.meta['prompt']}{q.gold}```"
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": q.id, "response": good},
                                                 {"question_id": q.id, "response": "```python\n    return 0\n```"}])
    main(["score", "humaneval", "--samples", str(samples), "--json", str(tmp_path / "o.json")])
    items = json.loads((tmp_path / "o.json").read_text())["items"]
    assert [it["correct"] for it in items] == [True, False]


def test_score_gsm8k_with_a_local_data_file(tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", [{"question": "1+1?", "answer": "1+1=2\n#### 2"},
                                              {"question": "2+3?", "answer": "#### 5"}])
    samples = write_jsonl(tmp_path / "s.jsonl", [{"question_id": "gsm8k/test/0", "response": "So #### 2"},
                                                 {"question_id": "gsm8k/test/1", "response": '{"answer": "$6"}'}])
    out = tmp_path / "o.json"
    assert main(["score", "gsm8k", "--samples", str(samples), "--data", str(data), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary == {"task": "gsm8k", "n": 2, "correct": 1, "accuracy": 0.5, "items": [
        {"id": "gsm8k/test/0", "correct": True, "extracted": "2"},
        {"id": "gsm8k/test/1", "correct": False, "extracted": "6"}]}


def test_score_synthetic_needs_no_data_file(tmp_path):
    task = get_task("synthetic")
    qs = task.load(limit=6)
    rows = [{"question_id": q.id, "response": task.render_answer(q.gold, q)} for q in qs]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "o.json"
    main(["score", "synthetic", "--samples", str(samples), "--json", str(out)])
    assert json.loads(out.read_text())["correct"] == 6


def test_unknown_question_id_is_a_user_error(tmp_path, capsys):
    data = write_jsonl(tmp_path / "g.jsonl", [{"question": "1+1?", "answer": "#### 2"}])
    samples = write_jsonl(tmp_path / "s.jsonl", [{"question_id": "gsm8k/test/99", "response": "#### 2"}])
    assert main(["score", "gsm8k", "--samples", str(samples), "--data", str(data)]) == 2
    assert "gsm8k/test/99" in capsys.readouterr().err


def test_sample_without_response_is_a_user_error(tmp_path, capsys):
    samples = write_jsonl(tmp_path / "s.jsonl", [{"question_id": "x"}])
    assert main(["score", "synthetic", "--samples", str(samples)]) == 2
    assert "sample 1" in capsys.readouterr().err


def test_missing_samples_file_is_a_user_error(tmp_path, capsys):
    assert main(["score", "gsm8k", "--samples", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_missing_default_data_names_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIERAMAS_SHARED_DATA", str(tmp_path / "absent"))
    samples = write_jsonl(tmp_path / "s.jsonl", [{"question_id": "gsm8k/test/0", "response": "#### 2"}])
    assert main(["score", "gsm8k", "--samples", str(samples)]) == 2
    assert "--data" in capsys.readouterr().err


def test_hf_loader_without_datasets_says_how_to_install(capsys):
    assert main(["tasks", "show", "gsm8k", "--data", "hf:openai/gsm8k"]) == 2
    err = capsys.readouterr().err
    assert "datasets" in err and ("pip install" in err or "Offline" in err)


def test_tasks_list_names_every_task(capsys):
    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("gsm8k", "math500", "mmlu_redux", "humaneval_plus", "synthetic_mc"))


def test_tasks_show_prints_questions_and_gold(capsys):
    assert main(["tasks", "show", "synthetic_arith", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("== synthetic/arithmetic/") == 2 and "-- gold:" in out


def test_score_mmlu_redux_only_ok_skips_flagged_items(tmp_path, shared_data):
    task = get_task("mmlu_redux")
    qs = task.load()
    flagged = next(q for q in qs if q.meta["error_type"] != "ok")
    ok = next(q for q in qs if q.meta["error_type"] == "ok")
    samples = write_jsonl(tmp_path / "s.jsonl", [{"question_id": q.id, "response": q.gold} for q in (flagged, ok)])
    out = tmp_path / "o.json"
    main(["score", "mmlu_redux", "--samples", str(samples), "--only-ok", "--json", str(out)])
    assert [it["id"] for it in json.loads(out.read_text())["items"]] == [ok.id]
