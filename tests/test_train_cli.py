"""`hieramas train` argument handling: overrides and flags in any order, bad input exits 2."""

from hieramas_gnn.cli import build_parser, main
from hieramas_gnn.commands.train import _split_flags


def test_flags_after_overrides_are_still_flags():
    args = build_parser().parse_args(["train", "--config", "c.yaml", "stage1.lr=0.1", "--out", "D",
                                      "run.seed=2", "--wandb=disabled"])
    overrides = _split_flags(args, list(args.overrides))
    assert overrides == ["stage1.lr=0.1", "run.seed=2"]
    assert (args.out, args.wandb) == ("D", "disabled")


def test_bad_override_is_a_user_error_with_exit_code_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stage1: {steps: 1}\n")
    assert main(["train", "--config", str(cfg), "stage1.lr=-1"]) == 2
    assert "stage1.lr: must be > 0" in capsys.readouterr().err


def test_missing_config_file_is_a_user_error(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_executor_flags_become_client_overrides_in_any_order(monkeypatch):
    import hieramas_gnn.distributed.options as options
    from hieramas_gnn.commands.train import _executor_overrides

    monkeypatch.setattr(options, "require_ray", lambda: None)  # the flags, not the install, are tested
    args = build_parser().parse_args(["train", "--config", "c.yaml", "run.seed=2", "--executor", "ray",
                                      "--ray-workers=3", "--ray-address", "auto"])
    assert _split_flags(args, list(args.overrides)) == ["run.seed=2"]
    assert _executor_overrides(args) == ["client.executor=ray", "client.ray_address=auto", "client.ray_workers=3"]
    args = build_parser().parse_args(["train", "--config", "c.yaml"])
    assert _executor_overrides(args) == []  # the config's client.executor decides


def test_ray_flags_without_executor_ray_exit_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stage1: {steps: 1}\n")
    assert main(["train", "--config", str(cfg), "--ray-workers", "2"]) == 2
    assert "only apply with --executor ray" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "run.seed=1", "--executor", "ray", "--ray-workers=x"]) == 2
    assert "--ray-workers must be an integer" in capsys.readouterr().err
