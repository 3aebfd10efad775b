"""The snippets of docs/SERVING.md (Python, litellm and HTTP use of a bundle) run as written:
the train snippet in a stand-in for a fresh clone (the bundle every other snippet uses,
`runs/demo/policy`), the Python API and the litellm provider in-process, `hieramas serve` as a
subprocess with the openai client, litellm over HTTP and curl against it; then Ctrl-C stops it
cleanly. The LiteLLM Proxy config names a handler that exists; the load-test command parses (it
runs in tests/test_serve_load.py, a heavy test)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "SERVING.md"


def snippet(name: str) -> str:
    """The fenced block after `<!-- snippet: name -->` in docs/SERVING.md."""
    m = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", DOC.read_text(), re.S)
    if m is None:
        raise KeyError(f"docs/SERVING.md has no snippet {name!r}")
    return m.group(1)


QUESTION = "Chen has 15 books. Ben gives Chen 38 more. How many books does Chen have now?"


def _clone_standin(where: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for top in sorted({line.split("/", 1)[0] for line in tracked.splitlines() if line}):
        if (ROOT / top).exists():
            (where / top).symlink_to(ROOT / top)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A stand-in for a fresh clone where the train snippet ran: the bundle at runs/demo/policy.
    Yields (folder, the MAS's reply to QUESTION as the Python API gives it)."""
    from hieramas_gnn import Policy

    import litellm
    from litellm.utils import custom_llm_setup

    work = tmp_path_factory.mktemp("docs")
    _clone_standin(work)
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "hieramas").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hieramas_gnn.cli "$@"\n')
    (bin_dir / "hieramas").chmod(0o755)
    env = os.environ | {"PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                        "WANDB_MODE": "offline"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", snippet("train")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    before = list(litellm.custom_provider_map or [])
    old = Path.cwd()
    os.chdir(work)
    try:
        expected = Policy.load("runs/demo/policy").solve(QUESTION).text
    finally:
        os.chdir(old)
    assert expected
    yield work, expected
    litellm.custom_provider_map = before  # later tests get the sim provider they had
    custom_llm_setup()


def _exec(code: str, cwd: Path) -> str:
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), {"__name__": "__snippet__"})
    finally:
        os.chdir(old)
    return out.getvalue()


def test_the_train_snippet_names_the_bundle_folder_the_others_use():
    assert "run.out_dir=runs/demo" in snippet("train") and "runs/demo/policy" in snippet("serve")


def test_the_python_snippet_runs(demo):
    work, expected = demo
    printed = _exec(snippet("python-api"), work)
    assert "'decision'" in printed and expected in printed


def test_the_litellm_provider_snippet_runs(demo):
    work, expected = demo
    printed = _exec(snippet("litellm-provider"), work)
    assert expected in printed and "'edges'" in printed


def test_the_proxy_config_names_the_provider_handler():
    import importlib

    import yaml

    config = yaml.safe_load(snippet("proxy-config"))
    (entry,) = config["litellm_settings"]["custom_provider_map"]
    module, _, attr = entry["custom_handler"].rpartition(".")
    assert getattr(importlib.import_module(module), attr) is not None
    assert config["model_list"][0]["litellm_params"]["model"].startswith(entry["provider"] + "/")


def test_the_loadtest_command_parses():
    import shlex

    from hieramas_gnn.serve import loadtest

    cmd = shlex.split(snippet("loadtest"))
    assert cmd[:3] == ["python", "-m", "hieramas_gnn.serve.loadtest"]
    seen = {}
    real = loadtest.run_load
    try:  # the flags as written, the run itself replaced (it is the heavy test's)
        loadtest.run_load = lambda *a, **k: seen.update(args=a, kwargs=k) or {"errors": 0}
        assert loadtest.main(cmd[3:] + ["--out", os.devnull]) == 0
    finally:
        loadtest.run_load = real
    assert seen["args"] == (2000, 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_http_snippets_run_against_hieramas_serve(demo):
    work, expected = demo
    port = str(_free_port())
    cmd = snippet("serve").strip().replace("8000", port).split()
    assert cmd[0] == "hieramas"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hieramas_gnn.cli", *cmd[1:]], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "hieramas serve did not come up"
                time.sleep(0.5)
        assert expected in _exec(snippet("http-openai").replace("8000", port), work)
        assert expected in _exec(snippet("http-litellm").replace("8000", port), work)
        if shutil.which("curl"):
            curl = subprocess.run(["bash", "-c", snippet("http-curl").replace("8000", port)],
                                  capture_output=True, text=True, timeout=60)
            assert json.loads(curl.stdout)["choices"][0]["message"]["content"] == expected
        proc.send_signal(signal.SIGINT)  # graceful shutdown
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
