"""The echoing provider and the leak scan of the secrets tests (test_secrets*.py) and report.py.

`install_echoing_provider(setenv, refuse)` sets two fake credentials (a key-shaped `KEY` in
HIERAMAS_FAKE_API_KEY, a plain `PLAIN_SECRET` in HIERAMAS_FAKE_TOKEN) and makes every `faults/`
model whose litellm name `refuse(name)` accepts answer with a 401 whose body echoes both; the
others answer like `faults/succeed`. `leaks(folder, console)` lists every file under `folder`
(binary ones included: SQLite, safetensors, wandb logs) and the console text that holds either
value or any key-shaped string (`redact`'s patterns). `train_export_serve(folder)` runs `train`,
`export` and `serve` that way (test_secrets_pipeline.py says how).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

KEY = "sk-proj-FAKEkey0123456789abcdefXYZ"
PLAIN_SECRET = "plain-secret-value-42"  # not key-shaped: caught as the value of a *_TOKEN variable
POOL_MODEL_EXTRA = {"api_key_env": "HIERAMAS_FAKE_API_KEY"}


def install_echoing_provider(setenv: Callable[[str, str], None], refuse: Callable[[str], bool]) -> Callable[[], None]:
    """Route `faults/` calls through the echoing 401 (see module docstring); returns an undo."""
    import litellm

    from hieramas_gnn.llm import faults

    async def answer(handler, model, messages, kwargs):
        if not refuse(model):
            return faults._response(model, messages)
        sent = kwargs.get("api_key") or os.environ["HIERAMAS_FAKE_API_KEY"]
        raise litellm.AuthenticationError(
            message=f"Incorrect API key provided: {sent}. Also saw token {os.environ['HIERAMAS_FAKE_TOKEN']}",
            llm_provider="faults", model=model)

    setenv("HIERAMAS_FAKE_API_KEY", KEY)
    setenv("HIERAMAS_FAKE_TOKEN", PLAIN_SECRET)
    original, faults._answer = faults._answer, answer
    faults.register(faults.FaultProvider(fail_times=0))

    def undo() -> None:
        faults._answer = original

    return undo


def _found(text: str) -> list[str]:
    from hieramas_gnn.redact import _KEY_SHAPED

    hits = [s for s in (KEY, PLAIN_SECRET) if s in text]
    return hits + [f"key-shaped {m.group(0)[:12]}..." for m in _KEY_SHAPED.finditer(text)]


def leaks(folder: Path, console: str) -> list[str]:
    """'<where>: <what>' for every secret value or key-shaped string in a file or the console."""
    found = [f"console: {s}" for s in _found(console)]
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.relative_to(folder)}: {s}" for s in _found(text)]
    return found


def files_scanned(folder: Path) -> int:
    return sum(p.is_file() for p in folder.rglob("*"))


TRAIN_CONFIG = {"task": {"name": "synthetic", "train_size": 6, "val_size": 3, "test_size": 0},
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


def train_export_serve(folder: Path) -> tuple[str, dict[str, int], list[tuple[int, str]]]:
    """(console + log text, exit codes of train and export, (status, body) of each served request)."""
    import pytest
    import yaml

    from hieramas_gnn.cli import main as cli
    from hieramas_gnn.serve.app import create_app
    from hieramas_gnn.serve.policy import Policy
    from hieramas_gnn.serve.server import ServerThread

    (folder / "pool.yaml").write_text(yaml.safe_dump(_pool()))
    (folder / "train.yaml").write_text(yaml.safe_dump(TRAIN_CONFIG))
    refusing = {"all": False}
    console, handler = io.StringIO(), logging.StreamHandler()
    handler.setStream(console)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_MODE", "WANDB_SILENT"):
            mp.delenv(var, raising=False)  # the tracker sets them: restored afterwards
        undo = install_echoing_provider(mp.setenv, refuse=lambda model: refusing["all"] or model.endswith("down"))
        logging.getLogger().addHandler(handler)
        try:
            with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
                codes = {"train": cli(["train", "--config", "train.yaml"]),
                         "export": cli(["export", "--run", "run", "--out", "exported"])}
                refusing["all"] = True
                policy = Policy.load(folder / "exported", folder / "pool.yaml", cache=folder / "serve.sqlite",
                                     client={"max_retries": 0})  # the user's pool: keys never come from a bundle
                served = _serve(policy, create_app, ServerThread)
        finally:
            logging.getLogger().removeHandler(handler)
            undo()
    return console.getvalue(), codes, served


def _serve(policy: Any, create_app: Any, server_thread: Any) -> list[tuple[int, str]]:
    server = server_thread(create_app(policy))
    url = server.start()
    try:
        questions = ["What is 2 + 3?", *[q.text for q in policy.task.load(None, "test", limit=2)]]
        served = [_post(f"{url}/v1/chat/completions", {"model": policy.name, "messages": [{"role": "user", "content": q}]})
                  for q in questions]
        return served + [_post(f"{url}/design", {"question": questions[0]})]
    finally:
        server.stop()
