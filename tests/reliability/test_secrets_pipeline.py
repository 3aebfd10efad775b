"""Keys never reach a file or the console under `train`, `export` and `serve`.

One tiny run with fake keys in the environment: `hieramas train` (wandb offline) over a pool
whose model `b` always gets a 401 echoing the key it was sent, so its failures land in metrics,
warnings and wandb; `hieramas export` of that run; then the bundle served (`create_app` on a
real uvicorn thread) while every model refuses, so chat requests fail with the echoed key in
the provider's message. Every file under the test folder (run folder, metrics.jsonl, wandb
offline files, both bundles, caches) and everything printed or logged is scanned.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from hieramas_gnn.redact import MASK
from tests.reliability.secrets_scan import POOL_MODEL_EXTRA, files_scanned, install_echoing_provider, leaks

CONFIG = {"task": {"name": "synthetic", "train_size": 6, "val_size": 3, "test_size": 0},
          "pool": {"name": "pool.yaml", "decision": "a"},
          "cache": {"path": "cache.sqlite"},
          "policy": {"embedder": "hashing", "embed_cache": "embeddings", "arch": {"hidden": 16}},
          "stage1": {"steps": 2, "batch_size": 3, "val_every": 1, "checkpoint_every": 1},
          "topology": {"n_candidates": 3, "classifier": {"epochs": 2, "min_spread": 0.0}},
          "client": {"max_retries": 0}, "run": {"out_dir": "run"},
          "tracking": {"wandb": "offline", "progress": False}}


def _pool() -> dict:
    return {"name": "echo", "models": [
        {"name": m, "litellm_model": f"faults/{mode}", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
         "extra": POOL_MODEL_EXTRA} for m, mode in (("a", "succeed"), ("b", "down"))]}


def _post(url: str, body: dict) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """(folder, console + log text, exit codes, serve responses) of the whole run."""
    from hieramas_gnn.cli import main as cli
    from hieramas_gnn.serve.app import create_app
    from hieramas_gnn.serve.policy import Policy
    from hieramas_gnn.serve.server import ServerThread

    folder = tmp_path_factory.mktemp("secrets")
    (folder / "pool.yaml").write_text(yaml.safe_dump(_pool()))
    (folder / "train.yaml").write_text(yaml.safe_dump(CONFIG))
    refusing = {"all": False}
    console, handler = io.StringIO(), logging.StreamHandler()
    handler.setStream(console)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_MODE", "WANDB_SILENT"):
            mp.delenv(var, raising=False)  # the tracker sets them: restored after the module
        undo = install_echoing_provider(mp.setenv, refuse=lambda model: refusing["all"] or model.endswith("down"))
        logging.getLogger().addHandler(handler)
        try:
            with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
                codes = {"train": cli(["train", "--config", "train.yaml"]),
                         "export": cli(["export", "--run", "run", "--out", "exported"])}
                refusing["all"] = True
                policy = Policy.load(folder / "exported", cache=folder / "serve.sqlite", client={"max_retries": 0})
                server = ServerThread(create_app(policy))
                url = server.start()
                try:
                    questions = ["What is 2 + 3?", *[q.text for q in policy.task.load(None, "test", limit=2)]]
                    served = [_post(f"{url}/v1/chat/completions",
                                    {"model": policy.name, "messages": [{"role": "user", "content": q}]})
                              for q in questions]
                    served.append(_post(f"{url}/design", {"question": questions[0]}))
                finally:
                    server.stop()
        finally:
            logging.getLogger().removeHandler(handler)
            undo()
    return folder, console.getvalue(), codes, served


def test_train_and_export_finish_with_the_refused_model_recorded(scanned):
    folder, _, codes, _ = scanned
    assert codes == {"train": 0, "export": 0}
    rows = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    reasons = [r for row in rows for r in (row.get("train/failure_reasons") or {})]
    assert reasons and all(MASK in r and "Incorrect API key" in r for r in reasons)


def test_wandb_offline_files_were_written_and_scanned(scanned):
    folder, *_ = scanned
    assert list((folder / "run" / "wandb").rglob("*.wandb"))


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
