"""Shared set-up of the bundle benchmarks (not a benchmark itself): a policy bundle to load and ask.

`bundle(out_dir, quick)`:
- full: a real MATH-L5 replay bundle, exported by `hieramas train --config
  experiments/configs/replay_math_l5.yaml` on tiny sizes (8 + 4 questions, 1 step, no design
  search) in a child process. Loading and asking it costs what a frontier run's bundle costs (same
  config: MiniLM embedder, the 7-model replay pool, the same architecture; only the weights'
  values differ, which no timing here depends on). Needs ../shared/data (the MATH-L5 outcome table).
- quick: `serve.testing.sim_bundle` (synthetic task, sim pool, hashing embedder; milliseconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "experiments" / "configs" / "replay_math_l5.yaml"


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), out.get("PYTHONPATH", "")) if p)
    for key, value in (("WANDB_MODE", "offline"), ("LITELLM_LOCAL_MODEL_COST_MAP", "True"), ("HF_HUB_OFFLINE", "1"),
                       ("TRANSFORMERS_OFFLINE", "1"), ("RAY_USAGE_STATS_ENABLED", "0"),
                       ("TOKENIZERS_PARALLELISM", "false")):
        out.setdefault(key, value)
    return out


def replay_bundle(out_dir: Path) -> Path:
    """Export a tiny-training MATH-L5 replay bundle under `out_dir` (module docstring)."""
    cmd = [sys.executable, "-m", "hieramas_gnn.cli", "train", "--config", str(CONFIG), "--out", str(out_dir / "run"),
           "--quiet", "tracking.wandb=disabled", "tracking.progress=false", f"cache.path={out_dir / 'rollouts.sqlite'}",
           "policy.embed_cache=null", "task.train_size=8", "task.val_size=4", "task.test_size=4", "stage1.steps=1",
           "stage1.warm_start=none", "stage1.val_every=1"]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"exporting the replay bundle failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out_dir / "run" / "policy"


def bundle(out_dir: Path, quick: bool) -> tuple[Path, str]:
    """(bundle folder, what it is)."""
    if quick:
        from hieramas_gnn.serve.testing import sim_bundle

        return sim_bundle(out_dir / "sim"), "sim_bundle (synthetic task, sim pool, hashing embedder)"
    return replay_bundle(out_dir), "MATH-L5 replay bundle (replay_math_l5.yaml: MiniLM, 7 replay models), tiny training"
