"""The design search of a cost-conditioned run (`reward.cost_lambda_range` with
`stage1.warm_start: search`): the search of `train/warm_start.py` at every λ of the run's grid.

Each grid λ gets its own search under the reward at that λ (the same shape), so its family
(models ranked by reward at λ), its decision model and its winner are those a run with that one
`reward.cost_lambda` would search. The searches share their rollouts (`MemoRunner`: each
(design, question) runs once in the process, and the rollout cache makes a re-run free), so
covering the range costs one search plus the designs only some λ adds.

The result (`design_search_grid.json`, read back by a resumed run) fills the run's `CostGrid`:
per grid λ the searched design (the clone target of a query at that λ: stage 1 clones each
training query at every grid λ, and its `warm_start_bc` term pulls an episode at λ towards the
design of the nearest grid λ), its decision model (the policy's decision at that λ) and its
search reward, accuracy and $/query.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hieramas_gnn.guards import dumps
from hieramas_gnn.mas.design import Design
from hieramas_gnn.paths import atomic_write_text
from hieramas_gnn.train import warm_start as W
from hieramas_gnn.train.cluster_search import MemoRunner
from hieramas_gnn.train.rewards import Reward

FILE = "design_search_grid.json"


def search(cfg: Any, setup: Any, fixed_decision: str | None) -> list[dict[str, Any]]:
    """Per grid λ of `setup.cost_grid`: the search result's row (module docstring)."""
    shared = replace(setup, runner=MemoRunner(setup.runner))
    rows = []
    for lam in setup.cost_grid.lambdas:
        found = W.search(cfg, shared, Reward(cfg.reward.shape, lam).of_trace, fixed_decision)
        best = found.rows[0]
        rows.append({"cost_lambda": lam, "decision": found.decision, "design": found.design.summary(),
                     "design_json": found.design.to_dict(), "search_reward": best["reward"],
                     "search_accuracy": best["accuracy"], "search_cost_usd": best["cost_usd"],
                     "queries": found.queries})
    return rows


def resolve(cfg: Any, setup: Any, fixed_decision: str | None) -> W.SearchResult:
    """Search the grid (or read `design_search_grid.json`), fill `setup.cost_grid` and return
    the search result at the grid's default λ (the run's decision model and `warm_design`)."""
    path = Path(cfg.run.dir) / FILE
    if path.exists():
        rows = json.loads(path.read_text())["points"]
    else:
        rows = search(cfg, setup, fixed_decision)
        atomic_write_text(path, dumps({"rule": "per grid λ, the best mean reward at that λ of the simple-design "
                                       "family on the search queries", "shape": cfg.reward.shape,
                                       "points": rows}, indent=2, default=float) + "\n")
    grid = setup.cost_grid
    grid.points = [dict(r) for r in rows]
    home = grid.nearest(grid.default)
    return W.SearchResult(Design.from_dict(home["design_json"]), home["decision"], [], home.get("queries", ""))
