"""The controlled credit-assignment experiment runs end to end at small scale (sim backend)."""

import json
import os
import subprocess
import sys

from hieramas_gnn.paths import REPO_ROOT


def test_credit_assignment_experiment_runs_and_writes_the_table(tmp_path):
    env = dict(os.environ)  # the experiment's config turns the simulated latency off
    cmd = [sys.executable, str(REPO_ROOT / "experiments" / "credit_assignment" / "run.py"),
           "--seeds", "1", "--baselines", "none", "counterfactual", "--out", str(tmp_path),
           "stage1.steps=2", "stage1.val_every=2", "stage1.checkpoint_every=2", "stage1.batch_size=2",
           "task.train_size=4", "task.val_size=2", "credit.k=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["baseline"] for r in runs] == ["none", "counterfactual"]
    assert set(runs[0]["roles"]) == {"solver", "verifier", "generalist"}
    assert runs[1]["rollouts"] > runs[0]["rollouts"]  # the counterfactual's extra rollouts
    md = (tmp_path / "results.md").read_text()
    assert "| counterfactual | 1 |" in md and "| none | 1 |" in md
