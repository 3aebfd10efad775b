"""Files a resumed `train` reads back are replaced whole, never left truncated by a kill mid-write.

A SIGKILL between `open(..., "w")` (which truncates) and the write used to leave an empty
`config.yaml`, and the resume then refused the run folder. Each test makes the final rename fail
(standing in for a kill before it) and checks that the previous file is intact.
"""

from __future__ import annotations

import os

import pytest

from hieramas_gnn.config import load_config
from hieramas_gnn.paths import atomic_write_text


@pytest.fixture
def rename_fails(monkeypatch):
    def fail(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", fail)


def test_atomic_write_text_replaces_the_content_and_leaves_no_temp_file(tmp_path):
    path = atomic_write_text(tmp_path / "f.txt", "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_a_write_that_fails_midway_leaves_the_previous_content(tmp_path):
    path = atomic_write_text(tmp_path / "f.txt", "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "new \udcff")  # fails while writing, after the temp file was opened
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_the_run_folders_config_yaml_survives_an_interrupted_rewrite(tmp_path, monkeypatch):
    from hieramas_gnn.config_io import dump_yaml

    path = tmp_path / "config.yaml"
    dump_yaml(load_config(None, ["run.seed=1"]), path)
    before = path.read_text()

    def fail(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="killed"):
        dump_yaml(load_config(None, ["run.seed=2"]), path)
    assert path.read_text() == before


def test_run_name_and_split_are_written_whole(tmp_path, rename_fails):
    from hieramas_gnn.tasks.splits import split_questions
    from hieramas_gnn.tasks import get_task
    from hieramas_gnn.tracking import run_name

    with pytest.raises(OSError, match="killed"):
        run_name(tmp_path, "synthetic", "exp", 0)
    questions = get_task("synthetic").load(None, "test", limit=6)
    with pytest.raises(OSError, match="killed"):
        split_questions(questions, (3, 2, 1)).write(tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a torn file nor a temp file left behind
