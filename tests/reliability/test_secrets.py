"""Keys never reach a file or the console: a provider whose 401 body echoes the key it was sent
(and the value of another key-holding variable) runs under `collect` and `baselines`; every file
written and everything printed is scanned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hieramas_gnn.cli import main as cli
from hieramas_gnn.llm import faults
from hieramas_gnn.redact import MASK, redact
from tests.reliability.secrets_scan import KEY, POOL_MODEL_EXTRA, install_echoing_provider, leaks


@pytest.fixture
def echoing_provider(monkeypatch):
    """`faults/...` models answer every call with a 401 whose body echoes the credentials."""
    monkeypatch.setattr(faults, "_answer", faults._answer)  # restored after the test
    install_echoing_provider(monkeypatch.setenv, refuse=lambda model: True)


def _pool(folder: Path) -> Path:
    pool = {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6,
                                     "output_cost_per_token": 2e-6, "extra": POOL_MODEL_EXTRA}]}
    path = folder / "pool.yaml"
    path.write_text(yaml.safe_dump(pool))
    return path


def test_collect_traces_and_summary_hold_no_key(tmp_path, capsys, echoing_provider):
    _pool(tmp_path)
    cfg = {"task": "synthetic", "limit": 2, "pool": "pool.yaml", "designs": ["single"], "cache": "cache.sqlite",
           "out": "traces.jsonl", "client": {"max_retries": 0}}
    (tmp_path / "collect.yaml").write_text(yaml.safe_dump(cfg))
    code = cli(["collect", "--config", str(tmp_path / "collect.yaml"), "--quiet", "--summary", str(tmp_path / "summary.json")])
    printed = "".join(capsys.readouterr())
    assert code == 1  # every trace failed: the provider refused the key
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert MASK in summary["first_failure"] and "Incorrect API key" in summary["first_failure"]
    assert leaks(tmp_path, printed) == []


def test_baselines_failure_report_holds_no_key(tmp_path, capsys, echoing_provider):
    code = cli(["baselines", "--task", "synthetic", "--pool", str(_pool(tmp_path)), "--methods", "single", "--limit", "2",
                "--json", str(tmp_path / "out.json"), "--cache", str(tmp_path / "c.sqlite")])
    printed = "".join(capsys.readouterr())
    assert code == 0 and MASK in printed
    assert leaks(tmp_path, printed) == []


def test_redact_masks_key_shapes_and_key_env_values(monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "abcdefgh-not-shaped")
    text = f"401 {KEY} Bearer abc.def-123456789 hf_{'a' * 30} abcdefgh-not-shaped"
    assert redact(text) == f"401 {MASK} Bearer {MASK} {MASK} {MASK}"


def test_redact_leaves_ordinary_text_alone():
    text = "task-1234567890123456789 scored 0.93 on sk-short; desk-top"
    assert redact(text) == text
