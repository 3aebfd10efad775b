"""experiments/fair_anchor_replay.py runs end to end at tiny scale and writes what docs cite."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.paths import REPO_ROOT

pytestmark = pytest.mark.shared_data


def test_fair_anchor_replay_writes_methods_classes_and_sensitivity(monkeypatch, tmp_path, shared_data):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from experiments import fair_anchor_replay

    out = tmp_path / "fa"
    assert fair_anchor_replay.main(["--test-limit", "6", "--rank-limit", "6", "--benchmarks", "mmlu_redux",
                                    "--out", str(out)]) == 0
    bench = json.loads(out.with_suffix(".json").read_text())["benchmarks"][0]
    assert bench["anchor"] == bench["ranking"][0]["model"] and bench["n_test"] == 6
    methods = {r["method"] for r in bench["results"]}
    assert {"vote", "moa", "debate", "chain", "star", "moa@pool-first"} <= methods
    assert sum(c["share"] for c in bench["classes"]) == pytest.approx(1.0)
    assert bench["sensitivity"][0]["variant"] == "fitted model"
    assert "where the right answer stands" in out.with_suffix(".md").read_text()
