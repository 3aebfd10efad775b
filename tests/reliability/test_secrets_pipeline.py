"""Keys never reach a file or the console under `train`, `export` and `serve`.

One tiny run with fake keys in the environment (`secrets_scan.train_export_serve`): `hieramas
train` (wandb offline) over a pool whose model `b` always gets a 401 echoing the key it was sent,
so its failures land in metrics, warnings and wandb; `hieramas export` of that run; then the
bundle served (`create_app` on a real uvicorn thread) while every model refuses, so chat
requests fail with the echoed key in the provider's message. Every file under the test folder
(run folder, metrics.jsonl, wandb offline files, both bundles, caches) and everything printed or
logged is scanned.
"""

from __future__ import annotations

import json

import pytest

from hieramas_gnn.redact import MASK
from tests.reliability.secrets_scan import files_scanned, leaks, train_export_serve


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """(folder, console + log text, exit codes, serve responses) of the whole run."""
    folder = tmp_path_factory.mktemp("secrets")
    return (folder, *train_export_serve(folder))


def test_train_and_export_finish_with_the_refused_model_recorded(scanned):
    folder, _, codes, _ = scanned
    assert codes == {"train": 0, "export": 0}
    rows = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    reasons = [r for row in rows for r in (row.get("train/failure_reasons") or {})]
    assert reasons and all(MASK in r and "Incorrect API key" in r for r in reasons)


def test_wandb_offline_files_hold_the_refusals_with_the_key_masked(scanned):
    folder, *_ = scanned
    logs = list((folder / "run" / "wandb").rglob("*.wandb"))
    assert logs and any(f"Incorrect API key provided: {MASK}".encode() in p.read_bytes() for p in logs)


def test_serve_chat_failures_name_the_refusal_with_the_key_masked(scanned):
    *_, served = scanned
    chats, design = served[:-1], served[-1]
    assert [status for status, _ in chats] == [502] * len(chats)
    assert all(MASK in body and "Incorrect API key" in body for _, body in chats)
    assert design[0] == 200


def test_no_file_and_no_console_line_holds_a_key(scanned):
    folder, console, _, _ = scanned
    assert files_scanned(folder) > 20
    assert leaks(folder, console) == []
