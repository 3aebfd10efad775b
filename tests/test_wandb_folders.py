"""wandb files land in the folder a run names, whatever the working directory of an earlier run.

wandb's service process outlives a run; a relative folder would be read against the working
directory of the first run in the process, so a sweep or a test that changes directory between
runs would lose the later runs' files.
"""

from __future__ import annotations

from pathlib import Path

from hieramas_gnn.tracking import log_results


def test_a_second_run_in_another_working_directory_writes_into_its_own_folder(tmp_path, monkeypatch):
    rows = [{"method": "hieramas", "accuracy": 0.5, "cost_usd": 1e-4, "n": 4}]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        log_results("out", mode="offline", name=name, group="g", rows=rows, meta={})
    for name in ("first", "second"):
        found = list((tmp_path / name / "out" / "wandb").rglob("*.wandb"))
        assert found, f"no .wandb file under {name}/out/wandb: {sorted(p.name for p in tmp_path.rglob('*.wandb'))}"
