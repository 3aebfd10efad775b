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
