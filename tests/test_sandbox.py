"""The sandbox contains hostile programs: each fails cleanly and the host is unharmed."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from hieramas_gnn.tasks.sandbox import Program, run_many, run_program


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A host file that hostile programs try to read or delete."""
    path = tmp_path / "sentinel.txt"
    path.write_text("still here")
    return path


def test_plain_program_runs_and_prints():
    res = run_program("print(6 * 7)", timeout_s=10)
    assert res.ok and res.stdout.strip() == "42"


def test_standard_library_imports_work():
    res = run_program("import hashlib, json, math, re, itertools, collections, fractions, typing\nprint('ok')")
    assert res.ok and res.stdout.strip() == "ok", res.stderr


def test_error_gives_nonzero_exit_and_traceback():
    res = run_program("raise ValueError('boom')")
    assert res.returncode == 1 and "ValueError: boom" in res.stderr


def test_infinite_loop_is_killed_at_the_timeout():
    start = time.perf_counter()
    res = run_program("while True:\n    pass\n", timeout_s=1)
    assert res.timed_out and not res.ok
    assert time.perf_counter() - start < 10


def test_sleeping_child_group_is_killed_too():
    res = run_program("import time\ntime.sleep(60)", timeout_s=1)
    assert res.timed_out and res.returncode is not None and res.returncode < 0


def test_fork_bomb_is_contained():
    res = run_program("import os\nwhile True:\n    os.fork()\n", timeout_s=5)
    assert not res.ok and not res.timed_out
    assert "os.fork is not allowed" in res.stderr


def test_subprocess_is_refused():
    res = run_program("import subprocess\nsubprocess.run(['true'])", timeout_s=5)
    assert not res.ok and "not allowed" in res.stderr


def test_50_gb_allocation_fails_with_memory_error():
    res = run_program("x = bytearray(50 * 10**9)\nprint('allocated')", timeout_s=10, memory_mb=512)
    assert not res.ok and "MemoryError" in res.stderr and "allocated" not in res.stdout


def test_deleting_a_file_outside_the_sandbox_is_refused(sentinel: Path):
    res = run_program(f"import os\nos.remove({str(sentinel)!r})", timeout_s=5)
    assert not res.ok and "outside the sandbox" in res.stderr
    assert sentinel.read_text() == "still here"


def test_rmtree_outside_the_sandbox_is_refused(sentinel: Path):
    res = run_program(f"import shutil\nshutil.rmtree({str(sentinel.parent)!r})", timeout_s=5)
    assert not res.ok and sentinel.exists()


def test_overwriting_a_file_outside_the_sandbox_is_refused(sentinel: Path):
    res = run_program(f"open({str(sentinel)!r}, 'w').write('pwned')", timeout_s=5)
    assert not res.ok and sentinel.read_text() == "still here"


def test_reading_project_files_is_refused():
    project_file = Path(__file__).resolve()
    res = run_program(f"print(open({str(project_file)!r}).read())", timeout_s=5)
    assert not res.ok and "read outside the sandbox" in res.stderr and res.stdout == ""


def test_files_inside_the_sandbox_can_be_written_and_deleted():
    code = "import os, shutil\nos.mkdir('d')\nopen('d/x', 'w').write('1')\nshutil.rmtree('d')\nprint(os.listdir('.'))"
    res = run_program(code, timeout_s=5)
    assert res.ok, res.stderr


def test_opening_a_socket_is_refused():
    res = run_program("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))", timeout_s=5)
    assert not res.ok and "not allowed" in res.stderr


def test_low_level_socket_module_is_refused_too():
    res = run_program("import _socket\n_socket.socket()", timeout_s=5)
    assert not res.ok and "not allowed" in res.stderr


def test_socket_to_a_listening_host_port_gets_nothing():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        res = run_program(f"import socket\nsocket.create_connection(('127.0.0.1', {port}))", timeout_s=5)
        with pytest.raises(socket.timeout):
            server.accept()
    assert not res.ok


def test_killing_the_parent_is_refused():
    res = run_program(f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)", timeout_s=5)
    assert not res.ok and "not allowed" in res.stderr


def test_ctypes_is_refused():
    res = run_program("import ctypes", timeout_s=5)
    assert not res.ok and "ctypes" in res.stderr


def test_environment_holds_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HF_TOKEN", "hf-secret")
    res = run_program("import os\nprint(sorted(os.environ))\nprint(os.getcwd())", timeout_s=5)
    assert res.ok and "KEY" not in res.stdout and "TOKEN" not in res.stdout and "secret" not in res.stdout
    assert "hieramas-sbx-" in res.stdout


def test_huge_output_is_truncated():
    res = run_program("import sys\nsys.stdout.write('x' * (5 * 2**20))", timeout_s=10, max_output=2**16)
    assert len(res.stdout) < 2**16 + 100 and res.stdout.endswith("[output truncated]")


def test_input_files_are_given_and_outputs_collected():
    res = run_program("open('out.txt', 'w').write(open('in.txt').read().upper())",
                      files={"in.txt": b"abc"}, collect=("out.txt", "missing.txt"))
    assert res.ok and res.files == {"out.txt": b"ABC"}


def test_input_file_names_cannot_escape():
    with pytest.raises(ValueError, match="plain file name"):
        run_program("pass", files={"../escape.txt": b"x"})


def test_run_many_keeps_order_and_isolates_failures():
    progs = [Program("print(1)"), Program("raise SystemExit(3)"), Program("while True: pass", timeout_s=1), "print(4)"]
    results = run_many(progs, workers=2)
    assert [r.stdout.strip() for r in results] == ["1", "", "", "4"]
    assert [r.returncode for r in results][:2] == [0, 3] and results[2].timed_out


def test_the_run_survives_hostile_programs(sentinel: Path):
    hostile = ["import os\nwhile True: os.fork()", "x = bytearray(50 * 10**9)", "while True: pass",
               f"import os\nos.remove({str(sentinel)!r})", "import socket\nsocket.socket()"]
    results = run_many([Program(c, timeout_s=2, memory_mb=512) for c in hostile], workers=2)
    assert not any(r.ok for r in results)
    assert sentinel.exists() and os.getpid() > 0
    assert run_program("print('alive')").stdout.strip() == "alive"
