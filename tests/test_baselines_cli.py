"""`hieramas baselines` end to end through the real LLM client (litellm + the faults provider)."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.cli import main

POOL = """
name: faults-pool
models:
  - {name: echo1, litellm_model: faults/succeed, input_cost_per_token: 1.0e-6,
     output_cost_per_token: 2.0e-6, profile: echoes the prompt}
  - {name: echo2, litellm_model: faults/succeed, input_cost_per_token: 2.0e-6,
     output_cost_per_token: 4.0e-6, profile: echoes the prompt}
"""


def test_baselines_cli_writes_the_json_rows(tmp_path, capsys):
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    out = tmp_path / "rows.json"
    code = main(["baselines", "--task", "synthetic", "--pool", str(pool), "--methods",
                 "single,vote", "oracle", "--limit", "3", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert (report["task"], report["backend"], report["n"]) == ("synthetic", "faults", 3)
    assert [r["method"] for r in report["results"]] == ["single:echo1", "single:echo2", "vote", "oracle"]
    for row in report["results"]:
        assert {"method", "accuracy", "cost_usd", "tokens", "calls", "latency_ms_p50"} <= set(row)
    rows = {r["method"]: r for r in report["results"]}
    assert rows["vote"]["cost_usd"] == pytest.approx(rows["single:echo1"]["cost_usd"] + rows["single:echo2"]["cost_usd"])
    captured = capsys.readouterr()
    assert "single:echo1" in captured.out
    assert "baselines: " in captured.err and "hieramas: llm: " in captured.err  # progress, then the cost line


def test_baselines_cli_unknown_method_exits_2(tmp_path, capsys):
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    code = main(["baselines", "--task", "synthetic", "--pool", str(pool), "--methods", "tree"])
    assert code == 2
    assert "unknown method 'tree'" in capsys.readouterr().err


def test_fitted_methods_learn_on_train_and_are_evaluated_on_the_rest(tmp_path, capsys):
    out = tmp_path / "rows.json"
    code = main(["baselines", "--task", "synthetic", "--pool", "sim", "--train-size", "12", "--val-size", "4",
                 "--limit", "6", "--methods", "best_single", "router", "cascade", "--embedder", "hashing",
                 "--sim-latency", "off", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n"] == 6 and [r["method"] for r in report["results"]] == ["best_single", "router", "cascade"]
    assert "fitted on 12 train + 4 val questions" in capsys.readouterr().err


def test_fitted_methods_without_training_questions_exit_2(capsys):
    code = main(["baselines", "--task", "synthetic", "--pool", "sim", "--methods", "router", "--limit", "2"])
    assert code == 2
    assert "fitted methods need --train-size" in capsys.readouterr().err
