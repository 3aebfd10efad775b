"""Run untrusted Python (model-written code) in a contained subprocess.

Each program runs in its own process, in a fresh temporary directory, under these layers:

- `python -I -S`: isolated mode (no PYTHON* variables, no user site, no script dir on the path)
  and no site-packages (the standard library only); a minimal environment (no keys, no tokens).
- rlimits: address space (`memory_mb`), CPU seconds, file size, open files, no core dumps, and
  process count (`RLIMIT_NPROC`; note Linux does not enforce it for root).
- a PEP 578 audit hook installed before the program runs: writes, deletes, renames, chmods and
  directory listings only inside the sandbox directory; reads only there and in the standard
  library; no sockets, no subprocesses, no fork/exec/spawn, no ctypes, no signals to other
  processes.
- a wall-clock timeout; the program runs in its own session and the whole process group is
  killed (SIGKILL) on timeout and after it exits; output is captured to files outside the sandbox
  directory and truncated at `max_output` bytes.

This contains accidents and ordinary hostile code (loops, fork bombs, huge allocations, deleting
files, opening sockets). It is not a security boundary against a determined attacker: audit hooks
can in principle be bypassed by memory corruption, and the process runs as the calling user. For
hostile workloads, run the whole job in a container or VM. See docs/TASKS.md.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

_BOOT_FILE = Path(__file__).with_name("sandbox_boot.py")
SAFE_ENV = {
    "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class SandboxResult:
    """What came back from one program.

    returncode: exit status (negative = killed by that signal; None only if it never started).
    timed_out:  the wall-clock limit was hit and the process group was killed.
    files:      the requested `collect` files the program left in its directory (missing ones absent).
    """

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass(frozen=True)
class Program:
    """One job for `run_many`: source, input files and limits."""

    code: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    timeout_s: float = 10.0
    memory_mb: int = 1024
    collect: tuple[str, ...] = ()
    max_file_mb: int = 64


def run_program(code: str, *, timeout_s: float = 10.0, memory_mb: int = 1024,
                files: Mapping[str, bytes] | None = None, collect: Sequence[str] = (),
                max_output: int = 1 << 20, max_procs: int = 32, max_file_mb: int = 64) -> SandboxResult:
    """Run `code` as `__main__` in a fresh sandbox directory (see module docstring)."""
    with tempfile.TemporaryDirectory(prefix="hieramas-sbx-") as top:
        box = Path(top) / "box"
        box.mkdir()
        (box / "main.py").write_text(code, encoding="utf-8")
        for name, data in (files or {}).items():
            _safe_child(box, name).write_bytes(data)
        limits = {"memory_bytes": int(memory_mb) << 20, "cpu_s": int(timeout_s) + 2,
                  "fsize_bytes": max(max_output, int(max_file_mb) << 20), "nproc": max_procs, "nofile": 64}
        env = dict(SAFE_ENV, HOME=str(box), TMPDIR=str(box))
        cmd = [sys.executable, "-I", "-S", "-c", _boot_source(), json.dumps(limits)]
        start = time.perf_counter()
        with open(Path(top) / "stdout", "wb") as out, open(Path(top) / "stderr", "wb") as err:
            proc = subprocess.Popen(cmd, cwd=box, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)
                proc.wait()
        duration = time.perf_counter() - start
        collected = {}
        for name in collect:
            path = _safe_child(box, name)
            if path.is_file() and not path.is_symlink():
                collected[name] = path.read_bytes()
        return SandboxResult(
            returncode=proc.returncode, timed_out=timed_out, duration_s=duration, files=collected,
            stdout=_read_capped(Path(top) / "stdout", max_output), stderr=_read_capped(Path(top) / "stderr", max_output),
        )


def run_many(programs: Sequence[Program | str], workers: int | None = None) -> list[SandboxResult]:
    """Run programs in parallel (one subprocess each, `workers` at a time); results in input order."""
    jobs = [p if isinstance(p, Program) else Program(code=p) for p in programs]
    workers = max(1, workers or os.cpu_count() or 1)

    def one(p: Program) -> SandboxResult:
        return run_program(p.code, timeout_s=p.timeout_s, memory_mb=p.memory_mb, files=p.files, collect=p.collect,
                           max_file_mb=p.max_file_mb)

    if workers == 1 or len(jobs) <= 1:
        return [one(p) for p in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


@functools.cache
def _boot_source() -> str:
    """The bootstrap run with `-c` (read once, on first use)."""
    return _BOOT_FILE.read_text(encoding="utf-8")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _safe_child(box: Path, name: str) -> Path:
    """`box / name`, refusing names that would leave the sandbox directory."""
    path = (box / name).resolve()
    if path.parent != box.resolve():
        raise ValueError(f"sandbox file name must be a plain file name, got {name!r}")
    return path


def _read_capped(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n[output truncated]" if len(data) > limit else "")
