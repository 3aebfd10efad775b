"""Any replay pool a user writes works with the same commands (nothing is tuned to one pool).

A pool YAML of a seeded random subset of the MATH-L5 replay models, in a shuffled order, goes
through `hieramas demo --config experiments/configs/replay_math_l5.yaml --pool <it>` (tiny sizes):
it trains, exports and evaluates, every baseline and every chosen design uses only its models, and
the fitted best single model is one of them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from hieramas_gnn import cli
from hieramas_gnn.paths import REPO_ROOT

FULL = REPO_ROOT / "experiments/pools/replay-math-l5-7.yaml"


@pytest.mark.parametrize("seed", [3])
def test_a_user_written_subset_pool_runs_the_replay_experiment_commands(tmp_path, monkeypatch, shared_data, seed):
    spec = yaml.safe_load(FULL.read_text())
    rng = np.random.default_rng(seed)
    models = [spec["models"][i] for i in rng.permutation(len(spec["models"]))[:3]]
    names = [m["name"] for m in models]
    pool = tmp_path / "my-pool.yaml"
    pool.write_text(yaml.safe_dump({"name": "my-pool", "models": models}))
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb"))
    out = tmp_path / "out"
    code = cli.main(["demo", "--config", str(REPO_ROOT / "experiments/configs/replay_math_l5.yaml"),
                     "--pool", str(pool), "--seeds", "1", "--eval-runs", "1", "--out", str(out),
                     "--wandb", "disabled", "--baselines", "single", "vote", "best_single",
                     "--set", "task.train_size=16", "task.val_size=8", "task.test_size=12", "stage1.steps=2",
                     "stage1.val_every=1", "policy.embedder=hashing", f"cache.path={tmp_path / 'c.sqlite'}",
                     f"policy.embed_cache={tmp_path / 'emb'}"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in results["results"]}
    assert {"hieramas", "vote", "best_single"} <= methods
    assert {m for m in methods if m.startswith("single:")} == {f"single:{n}" for n in names}
    bundle_pool = json.loads((out / "policy" / "policy.json").read_text())
    text = json.dumps(bundle_pool)
    others = [m["name"] for m in spec["models"] if m["name"] not in names]
    assert all(n in text for n in names) and not any(o in text for o in others), "the bundle names other models"
    per_query = json.loads((out / "per_query.json").read_text())
    assert len(per_query["question_ids"]) == 12
