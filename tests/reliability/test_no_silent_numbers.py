"""No silently wrong numbers: negative usage is refused, design edges are never coerced, a budget
that stops a run is reported (exit 3, `budget_stopped`) instead of an accuracy of 0."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from hieramas_gnn.cli import main as cli
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.types import InvalidUsage, LLMRecord, LLMCallError
from hieramas_gnn.mas.design import Design
from tests.reliability.bad_inputs import _valid_design


def _record(**over):
    fields = dict(key="k", model="m", text="t", prompt_tokens=1, completion_tokens=2, cost_usd=0.01,
                  latency_ms=3.0, cache_hit=False, created_at=0.0)
    return LLMRecord(**{**fields, **over})


@pytest.mark.parametrize("field,value", [("prompt_tokens", -1), ("completion_tokens", -5), ("cost_usd", -0.01),
                                         ("cost_usd", math.nan), ("cost_usd", math.inf), ("latency_ms", -1.0),
                                         ("prompt_tokens", 1.5), ("completion_tokens", True)])
def test_negative_or_fake_usage_is_refused(field, value):
    with pytest.raises(InvalidUsage, match=field):
        _record(**{field: value})


def test_invalid_usage_is_a_failed_call_not_a_crash():
    assert issubclass(InvalidUsage, LLMCallError)


def test_valid_usage_is_accepted():
    assert _record().tokens == 3


@pytest.mark.parametrize("edge", [[0, 1.5], [0.0, 1.0], ["0", "1"], [True, False], [None, 1], [0, [1]]])
def test_design_edges_are_never_coerced(edge):
    data = {**_valid_design(), "edges": [edge]}
    with pytest.raises(UserError, match=r"design.edges\[0\]: role indices must be integers"):
        Design.from_dict(data)


def test_numpy_integer_edges_are_accepted():
    np = pytest.importorskip("numpy")
    data = {**_valid_design(), "edges": [[np.int64(0), np.int64(1)]]}
    assert Design.from_dict(data).edges == ((0, 1),)


def _faults_pool(tmp_path):
    pool = {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-3,
                                     "output_cost_per_token": 1e-3}]}
    (tmp_path / "pool.yaml").write_text(yaml.safe_dump(pool))
    return str(tmp_path / "pool.yaml")


def test_baselines_budget_stop_is_reported_not_a_silent_zero(tmp_path, capsys):
    code = cli(["baselines", "--task", "synthetic", "--pool", _faults_pool(tmp_path), "--methods", "single", "--limit", "4",
                "--budget", "0.0000001", "--json", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert code == 3 and "budget $1e-07 reached" in err and "not a measurement" in err
    assert json.loads((tmp_path / "out.json").read_text())["budget_stopped"] is True


def test_eval_budget_stop_is_reported_not_a_silent_zero(tmp_path, capsys):
    design = tmp_path / "d.json"
    design.write_text(json.dumps({**_valid_design(), "mixtures": [{"proposers": ["a"], "synthesizer": "a"}] * 4,
                                  "decision": "a"}))
    code = cli(["eval", "--task", "synthetic", "--pool", _faults_pool(tmp_path), "--design", str(design), "--limit", "3",
                "--budget", "0.0000001", "--cache-mode", "off"])
    err = capsys.readouterr().err
    assert code == 3 and "budget $1e-07 reached" in err


def test_baselines_with_enough_budget_exits_0_and_says_not_stopped(tmp_path):
    code = cli(["baselines", "--task", "synthetic", "--pool", _faults_pool(tmp_path), "--methods", "single", "--limit", "2",
                "--budget", "100", "--json", str(tmp_path / "out.json")])
    assert code == 0 and json.loads((tmp_path / "out.json").read_text())["budget_stopped"] is False
