"""The topology experiments run end to end at tiny scale and write what docs/RESULTS.md cites."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.paths import REPO_ROOT

TINY = ["policy.embedder=hashing", "stage1.steps=4", "stage1.val_every=2"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb"))
    return tmp_path


def test_stage2_vs_random_writes_a_paired_verdict(offline):
    from experiments import stage2_vs_random

    code = stage2_vs_random.main(["--seeds", "1", "--train", "16", "--test", "12", "--runs", "2",
                                  "--out", str(offline / "run"), "--results", str(offline / "res"), "--set", *TINY])
    assert code == 0
    data = json.loads((offline / "res" / "stage2_vs_random.json").read_text())
    assert data["n"] == 12 and data["runs"] == 2 and len(data["per_seed"]) == 1
    assert abs(data["gap"] - (data["stage2"] - data["random"])) < 1e-3  # one seed: gap of the means
    assert data["verdict"].startswith("stage 2 ") and data["paired_se"] >= 0
    assert "paired gap" in (offline / "res" / "stage2_vs_random.md").read_text()


def test_topology_headroom_with_a_fixed_mixture(offline):
    from experiments import topology_headroom

    out = offline / "headroom.json"
    code = topology_headroom.main(["--n", "6", "--samples", "2", "--out", str(offline / "run"),
                                   "--fixed-mixture", "flash-science,qwen-logic:qwen-logic", "--results", str(out),
                                   "--set", *TINY, "task.train_size=16"])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["n_queries"] == 6 and data["samples"] == 2 and data["selector"].startswith("flash-science")
    assert 0.0 <= data["random_candidate"] <= 1.0
    counts = sum(v["n"] for v in data["structure"]["sinks"].values())
    assert counts == 6 * data["candidates"]  # every (query, candidate) falls in one sink class
