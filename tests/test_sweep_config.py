"""The wandb sweep over the cost weight of the MATH-L5 replay config: every parameter is a valid `hieramas train` override and every
grid point gets its own run folder (a shared folder would be refused as another run's)."""

from __future__ import annotations

import itertools

import pytest
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


def test_hieramas_sweep_runs_the_grid_as_one_group_tagged_by_point(capsys):
    from hieramas_gnn.cli import main

    assert main(["sweep", str(REPO_ROOT / "experiments/sweeps/replay_math_l5_cost_lambda.yaml"), "--dry-run",
                 "--wandb", "offline"]) == 0
    commands = capsys.readouterr().out.splitlines()
    assert len(commands) == 15 and all(c.startswith("hieramas train --config ") for c in commands)
    assert all("tracking.group=replay_math_l5_cost_lambda" in c and "tracking.wandb=offline" in c for c in commands)
    assert '"reward.cost_lambda=300", "run.seed=1"' in "\n".join(commands)


def test_hieramas_sweep_refuses_a_search_it_cannot_run_offline(tmp_path):
    from hieramas_gnn.cli import main

    path = tmp_path / "bayes.yaml"
    path.write_text(yaml.safe_dump({"method": "bayes", "parameters": {"run.seed": {"values": [0]}},
                                    "command": ["hieramas", "train", "--config", "c.yaml", "${args_no_hyphens}"]}))
    assert main(["sweep", str(path)]) == 2


@pytest.mark.slow
def test_hieramas_sweep_trains_every_point_offline_in_one_wandb_group(tmp_path, monkeypatch):
    from pathlib import Path

    from helpers.wandb_offline import read_run

    from hieramas_gnn.cli import main

    monkeypatch.chdir(tmp_path)
    sweep = {"program": "hieramas", "method": "grid",
             "parameters": {"run.seed": {"values": [0, 1]}, "run.name": {"value": "tiny"},
                            "run.out_dir": {"value": "runs/{name}__{seed}"}},
             "command": ["${env}", "hieramas", "train", "--config", str(REPO_ROOT / "experiments/configs/demo_quick.yaml"),
                         "task.train_size=8", "task.val_size=4", "task.test_size=4", "stage1.steps=2",
                         "stage1.val_every=1", "topology.n_candidates=2", "topology.classifier.epochs=1",
                         "cache.path=runs/rollouts.sqlite", "policy.embed_cache=runs/embeddings", "${args_no_hyphens}"]}
    Path("tiny.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["sweep", "tiny.yaml", "--wandb", "offline"]) == 0
    runs = [read_run(Path(f"runs/tiny__{seed}/wandb")) for seed in (0, 1)]
    assert {(r.group, r.job_type) for r in runs} == {("tiny", "train")}
    assert [r.tags for r in runs] == [["run.seed=0"], ["run.seed=1"]]
