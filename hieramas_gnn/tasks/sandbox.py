"""Run untrusted Python (model-written code) in a contained subprocess.

Each program runs in its own process, in a fresh temporary directory (the "box"), under these
layers (docs/TASKS.md says which of them is a boundary):

- namespaces, where the platform allows (`unshare` works: root, or user namespaces): fresh
  mount, pid, network and IPC namespaces; every mount but the box remounted read-only, then all
  capabilities dropped and no_new_privs set. The program sees only its own processes, has no
  network interface, and the kernel refuses any write outside the box (EROFS) whatever Python
  code does. `SandboxResult.isolation` says whether this layer was on ("namespaces") or not ("hook").
- `python -I -S`: isolated mode, the standard library only; a minimal environment (no keys).
- rlimits: address space (`memory_mb`), CPU seconds, file size, open files, no core dumps, processes.
- in-process guards: `os.mkfifo`/`os.mknod` removed; `sqlite3`, `ctypes`, `mmap`, subinterpreters,
  shared memory and other C modules that touch files unseen are unimportable; a PEP 578 audit hook
  confines opens, writes, deletes, renames and listings to the box (reads also to the stdlib) and
  refuses sockets, subprocesses, fork/exec, signals to other processes and `gc` object walks.
- a wall-clock timeout; the program runs in its own session and the whole process group is
  killed (SIGKILL) on timeout and after it exits; output is captured to files outside the box
  and truncated at `max_output` bytes.

Pass/fail is never read from the program's own exit code or output alone: graders (humaneval.py)
compare structured outputs in a process the candidate never ran in.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import stat
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
    isolation: str = "hook"

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
                max_output: int = 1 << 20, max_procs: int = 32, max_file_mb: int = 64,
                isolation: str = "auto") -> SandboxResult:
    """Run `code` as `__main__` in a fresh sandbox directory (see module docstring).

    isolation: "auto" (namespaces when `namespaces_available()`), "namespaces" or "hook".
    """
    if isolation not in ("auto", "namespaces", "hook"):
        raise ValueError(f"isolation must be auto, namespaces or hook, got {isolation!r}")
    use_ns = namespaces_available() if isolation == "auto" else isolation == "namespaces"
    with tempfile.TemporaryDirectory(prefix="hieramas-sbx-") as top:
        box = Path(top) / "box"
        box.mkdir()
        (box / "main.py").write_text(code, encoding="utf-8")
        for name, data in (files or {}).items():
            _safe_child(box, name).write_bytes(data)
        limits = {"memory_bytes": int(memory_mb) << 20, "cpu_s": int(timeout_s) + 2,
                  "fsize_bytes": max(max_output, int(max_file_mb) << 20), "nproc": max_procs, "nofile": 64, "readonly": use_ns}
        env = dict(SAFE_ENV, HOME=str(box), TMPDIR=str(box))
        cmd = [*(_UNSHARE if use_ns else []), sys.executable, "-I", "-S", "-c", _boot_source(), json.dumps(limits)]
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
        collected = {name: data for name in collect if (data := _collect(box, name)) is not None}
        return SandboxResult(
            returncode=proc.returncode, timed_out=timed_out, duration_s=duration, files=collected,
            isolation="namespaces" if use_ns else "hook",
            stdout=_read_capped(Path(top) / "stdout", max_output), stderr=_read_capped(Path(top) / "stderr", max_output),
        )


def run_many(programs: Sequence[Program | str], workers: int | None = None) -> list[SandboxResult]:
    """Run programs in parallel (one subprocess each, `workers` at a time); results in input order."""
    jobs = [p if isinstance(p, Program) else Program(code=p) for p in programs]
    workers = max(1, workers or os.cpu_count() or 1)

    namespaces_available()  # probe once before the threads start

    def one(p: Program) -> SandboxResult:
        return run_program(p.code, timeout_s=p.timeout_s, memory_mb=p.memory_mb, files=p.files, collect=p.collect,
                           max_file_mb=p.max_file_mb)

    if workers == 1 or len(jobs) <= 1:
        return [one(p) for p in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


_UNSHARE = ["unshare", "--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child", "--mount-proc",
            "--propagation", "private", "--"]


@functools.cache
def namespaces_available() -> bool:
    """Whether the read-only namespace layer works here (probed once per process with a real run)."""
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    try:
        res = run_program("open('probe', 'w').write('ok')", timeout_s=10, collect=("probe",), isolation="namespaces")
    except OSError:
        return False
    return res.ok and res.files.get("probe") == b"ok"


def _collect(box: Path, name: str) -> bytes | None:
    """A regular file the program left in the box (never follows a link it made)."""
    path = _safe_child(box, name)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        return fh.read()


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
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"sandbox file name must be a plain file name, got {name!r}")
    return box / name


def _read_capped(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n[output truncated]" if len(data) > limit else "")
