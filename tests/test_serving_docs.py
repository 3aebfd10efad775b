"""The snippets of docs/SERVING.md (Python, litellm and HTTP use of a bundle) run as written:
the Python API and the litellm provider in-process, `hieramas serve` as a subprocess with the
openai client, litellm over HTTP and curl against it; then Ctrl-C stops it cleanly. The bundle
is a tiny real one at the path the docs use (`runs/demo/policy`, in a temporary folder)."""

from __future__ import annotations

import contextlib
import io
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
ANSWER = "The answer is 53"  # what the sim backend's MAS answers to the docs' question


def snippet(name: str) -> str:
    """The fenced block after `<!-- snippet: name -->` in docs/SERVING.md."""
    m = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", DOC.read_text(), re.S)
    if m is None:
        raise KeyError(f"docs/SERVING.md has no snippet {name!r}")
    return m.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A temporary working folder with the bundle at runs/demo/policy; sim latency off."""
    from hieramas_gnn.backends.providers import register_offline_providers
    from hieramas_gnn.llm.types import SimSettings
    from hieramas_gnn.serve.testing import sim_bundle

    import litellm
    from litellm.utils import custom_llm_setup

    work = tmp_path_factory.mktemp("docs")
    sim_bundle(work / "runs" / "demo" / "policy")
    before = list(litellm.custom_provider_map or [])
    register_offline_providers(sim_settings=SimSettings(latency="off"))
    yield work
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
    printed = _exec(snippet("python-api"), demo)
    assert "'decision'" in printed and ANSWER in printed


def test_the_litellm_provider_snippet_runs(demo):
    printed = _exec(snippet("litellm-provider"), demo)
    assert ANSWER in printed and "'edges'" in printed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_http_snippets_run_against_hieramas_serve(demo):
    port = str(_free_port())
    cmd = snippet("serve").strip().replace("8000", port).split()
    assert cmd[0] == "hieramas"
    env = os.environ | {"PYTHONPATH": str(ROOT), "HIERAMAS_SIM_LATENCY": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "hieramas_gnn.cli", *cmd[1:]], cwd=demo, env=env,
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
        assert ANSWER in _exec(snippet("http-openai").replace("8000", port), demo)
        assert ANSWER in _exec(snippet("http-litellm").replace("8000", port), demo)
        if shutil.which("curl"):
            curl = subprocess.run(["bash", "-c", snippet("http-curl").replace("8000", port)],
                                  capture_output=True, text=True, timeout=60)
            assert ANSWER in curl.stdout
        proc.send_signal(signal.SIGINT)  # graceful shutdown
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
