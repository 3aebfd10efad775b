"""A command's JSON output replaces only that command's own earlier output, never a user's file.

`score --json`, `baselines --json`, `sim validate --json` and `eval --out` (its results.json) check
the file before any work: new, empty or this command's earlier output is written; anything else
is refused with an error naming the flag and the file, and the file is left byte-identical.
"""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.cli import main
from test_baselines_cli import POOL

USER_FILE = '{"my": "notes", "results": [1, 2, 3]}\n'


@pytest.mark.parametrize("argv", [
    ["score", "gsm8k", "--samples", "{d}/none.jsonl", "--json", "{out}"],
    ["baselines", "--task", "synthetic", "--pool", "{d}/pool.yaml", "--methods", "single", "--limit", "2",
     "--json", "{out}"],
    ["sim", "validate", "--json", "{out}"],
], ids=["score", "baselines", "sim-validate"])
def test_a_users_json_file_is_refused_and_left_as_it_was(argv, tmp_path, capsys):
    (tmp_path / "pool.yaml").write_text(POOL)
    out = tmp_path / "mine.json"
    out.write_text(USER_FILE)
    assert main([a.format(d=tmp_path, out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"--json {out}: exists and is not an earlier `hieramas {argv[0]}" in err and "refusing to overwrite" in err
    assert out.read_text() == USER_FILE


def test_baselines_replaces_its_own_earlier_json(tmp_path):
    (tmp_path / "pool.yaml").write_text(POOL)
    out = tmp_path / "rows.json"
    argv = ["baselines", "--task", "synthetic", "--pool", str(tmp_path / "pool.yaml"), "--methods", "single",
            "--json", str(out)]
    assert main([*argv, "--limit", "2"]) == 0
    assert main([*argv, "--limit", "3"]) == 0
    assert json.loads(out.read_text())["n"] == 3


def test_eval_does_not_write_over_another_commands_report(tmp_path, capsys):
    folder = tmp_path / "experiment"
    folder.mkdir()
    theirs = json.dumps({"task": "synthetic", "backend": "sim", "n": 4, "results": [], "config": "c.yaml"})
    (folder / "results.json").write_text(theirs)
    code = main(["eval", "--design", str(tmp_path / "d.json"), "--task", "synthetic", "--out", str(folder)])
    assert code == 2
    assert "not an earlier `hieramas eval` report" in capsys.readouterr().err
    assert (folder / "results.json").read_text() == theirs
