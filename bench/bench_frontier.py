"""CPU of one real-frontier point's seed: MATH-L5 replay training with the design-search warm start.

One seed of one reward point of `experiments/real_frontier.py` is `hieramas train --config
experiments/configs/replay_math_l5.yaml run.seed=0 reward.cost_lambda=1000`: the design search
(`stage1.warm_start: search` over train + val, 300 + 50 questions, 7 replay models), stage-1
REINFORCE (120 steps of 8 queries, validation every 10), the topology step and the bundle's
export. It runs in a child process from an empty folder (fresh rollout cache and embedding cache:
the MiniLM embedding of the questions is included; the replay answers are outcome-table lookups),
measured by `/usr/bin/time -v` (else `os.wait4`): `cpu_s_per_seed` = user + system CPU seconds
(the summary's `frontier_point_cpu_s_per_seed`; target <= 60 s), with wall time and peak RSS.
The test-set evaluation and the baselines of `hieramas demo --config` are not part of it.
Needs ../shared/data (the MATH-L5 outcome table).

Quick: tiny sizes (8 + 4 questions, 2 steps, a search over the 2 best models, hashing embedder).

`run(quick)` returns the figures; `python -m bench.bench_frontier [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench._bundle import CONFIG, env
from bench.bench_memory import measure

TARGET_S = 60.0
POINT = ["run.seed=0", "reward.shape=hieramas", "reward.cost_lambda=1000.0"]
QUICK = ["task.train_size=8", "task.val_size=4", "task.test_size=4", "stage1.steps=2", "stage1.val_every=1",
         "stage1.checkpoint_every=1", "stage1.warm_start_models=2", "stage1.warm_start_voters=1",
         "policy.embedder=hashing"]


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="hieramas-bench-frontier-") as tmp:
        out = Path(tmp)
        overrides = [*POINT, "tracking.wandb=disabled", "tracking.progress=false", f"cache.path={out / 'rollouts.sqlite'}",
                     "policy.embed_cache=" + str(out / "embeddings"), *(QUICK if quick else [])]
        cmd = [sys.executable, "-m", "hieramas_gnn.cli", "train", "--config", str(CONFIG), "--out", str(out / "run"),
               "--quiet", *overrides]
        res = measure(cmd, env())
        search = json.loads((out / "run" / "design_search.json").read_text()) if (out / "run" / "design_search.json").exists() else None
    n_designs = len(search.get("designs", search.get("rows", []))) if isinstance(search, dict) else None
    return {"config": "experiments/configs/replay_math_l5.yaml", "overrides": overrides[:3] + (QUICK if quick else []),
            "seeds": 1, "cpu_s_per_seed": res["cpu_s"], "user_s": res["user_s"], "sys_s": res["sys_s"],
            "wall_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"], "measured_by": res["measured_by"],
            "search_designs": n_designs, "target": f"<= {TARGET_S:g} s CPU per seed", "ok": None if quick else res["cpu_s"] <= TARGET_S}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
