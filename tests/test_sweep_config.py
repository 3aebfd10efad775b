"""The wandb sweep over the cost weight of the MATH-L5 replay config: every parameter is a valid `hieramas train` override and every
grid point gets its own run folder (a shared folder would be refused as another run's)."""

from __future__ import annotations

import itertools

import yaml

from hieramas_gnn.config import load_config
from hieramas_gnn.paths import REPO_ROOT


def test_the_lambda_sweep_gives_every_grid_point_its_own_valid_run():
    sweep = yaml.safe_load((REPO_ROOT / "experiments/sweeps/replay_math_l5_cost_lambda.yaml").read_text())
    config = REPO_ROOT / sweep["command"][sweep["command"].index("--config") + 1]
    params = sweep["parameters"]
    grid = [[(k, v) for v in (p["values"] if "values" in p else [p["value"]])] for k, p in params.items()]
    folders = set()
    for point in itertools.product(*grid):
        cfg = load_config(config, [f"{k}={v}" for k, v in point])
        folders.add(cfg.run.dir)
    assert len(folders) == len(list(itertools.product(*grid))) == 15


def test_run_folder_template_names_an_unknown_placeholder():
    import pytest

    from hieramas_gnn.errors import ConfigError

    with pytest.raises(ConfigError, match="cost_lambda"):
        load_config(None, ["run.out_dir=runs/{nope}"])
