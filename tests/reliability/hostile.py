"""The hostile programs (sandbox escapes and forged passes), as data shared by the tests and `report.py`.

`ESCAPES`: programs that try to change something outside their sandbox directory. Each is a
template with `{target}` (a real rollout cache on the host), `{outside}` (a host folder) and
`{tag}` (a unique name); containment means the target's bytes, the folder's listing and the
world-writable places (/tmp, /dev/shm) are unchanged afterwards.

`FORGERIES`: HumanEval completions of `add(a, b)` that return wrong answers and try to be graded
as passing anyway (a printed marker, exit 0, a replaced AssertionError, an object equal to
everything, a forged verdict file...). Containment means the grade is False.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ESCAPES: dict[str, str] = {
    "sqlite3_update_cache": "import sqlite3\nsqlite3.connect({target!r}).execute(\"update records set text='PWNED'\")",
    "sqlite3_vacuum_into": "import sqlite3\nsqlite3.connect(':memory:').execute(\"VACUUM INTO '{outside}/{tag}.db'\")",
    "sqlite3_via_import_module": "import importlib\nm = importlib.import_module('_sqlite3')\nm.connect({target!r}).execute(\"update records set text='PWNED'\")",
    "sqlite3_via_dunder_import": "__import__('sqlite3').connect({target!r}).execute('delete from records')",
    "mkfifo": "import os\nos.mkfifo('{outside}/{tag}')",
    "mknod": "import os, stat\nos.mknod('{outside}/{tag}', stat.S_IFIFO | 0o600)",
    "posix_mkfifo": "import posix\nposix.mkfifo('{outside}/{tag}')",
    "posix_reimport_mkfifo": "import sys\ndel sys.modules['posix']\nimport posix\nposix.mkfifo('{outside}/{tag}')",
    "imp_create_builtin": ("import _imp, importlib.machinery as M\n"
                           "p = _imp.create_builtin(M.ModuleSpec('posix', M.BuiltinImporter))\n"
                           "p.mkfifo('{outside}/{tag}')"),
    "dir_fd_escape": "import os\nfd = os.open('{outside}', os.O_RDONLY)\nos.open('{tag}', os.O_CREAT | os.O_WRONLY, dir_fd=fd)",
    "opener_dir_fd": ("import os\nfd = os.open('{outside}', os.O_RDONLY)\n"
                      "open('{tag}', 'w', opener=lambda p, f: os.open(p, f, dir_fd=fd)).write('x')"),
    "posix_shm": "import os, _posixshmem\n_posixshmem.shm_open('/{tag}', os.O_CREAT | os.O_RDWR, 0o600)",
    "dev_shm_write": "open('/dev/shm/{tag}', 'w').write('x')",
    "tmp_write": "open('/tmp/{tag}', 'w').write('x')",
    "subinterpreter": ("import _xxsubinterpreters as s\ni = s.create()\n"
                       "s.run_string(i, \"open('{outside}/{tag}', 'w').write('x')\")"),
    "dbm_create": "import dbm\ndbm.open('{outside}/{tag}', 'c')",
    "ctypes_libc": "import ctypes\nctypes.CDLL(None).mkfifo(b'{outside}/{tag}', 0o600)",
    "open_target_rw": "open({target!r}, 'r+b').write(b'PWNED')",
    "truncate_target": "import os\nos.truncate({target!r}, 0)",
    "chmod_target": "import os\nos.chmod({target!r}, 0o777)",
    "utime_target": "import os\nos.utime({target!r}, (0, 0))",
    "symlink_then_write": "import os\nos.symlink({target!r}, 'l')\nopen('l', 'w').write('PWNED')",
    "hardlink_then_write": "import os\nos.link({target!r}, 'h')\nopen('h', 'w').write('PWNED')",
    "rename_out": "import os\nos.rename('main.py', '{outside}/{tag}')",
    "copyfile_out": "import shutil\nshutil.copyfile('main.py', '{outside}/{tag}')",
    "makedirs_out": "import os\nos.makedirs('{outside}/{tag}/a')",
    "rmtree_out": "import shutil\nshutil.rmtree('{outside}')",
    "remove_target": "import os\nos.remove({target!r})",
    "mkstemp_out": "import tempfile\ntempfile.mkstemp(dir='{outside}')",
    "logging_file_handler": "import logging\nlogging.FileHandler('{outside}/{tag}.log').emit(logging.makeLogRecord({{'msg': 'x'}}))",
    "pathlib_write": "import pathlib\npathlib.Path('{outside}/{tag}').write_text('x')",
    "chdir_then_relative": "import os\nos.chdir('{outside}')\nopen('{tag}', 'w').write('x')",
    "relative_dotdot": "open('../../{tag}', 'w').write('x')",
    "unix_socket_bind": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.bind('{outside}/{tag}.sock')",
    "mmap_target": "import mmap\nf = open({target!r}, 'rb')\nmmap.mmap(f.fileno(), 0)[:5] = b'PWNED'",
    "subprocess_touch": "import subprocess\nsubprocess.run(['touch', '{outside}/{tag}'])",
    "os_system_touch": "import os\nos.system('touch {outside}/{tag}')",
    "fork_then_write": "import os\nif os.fork() == 0:\n    open('{outside}/{tag}', 'w')",
    "gc_walk_for_originals": "import gc\n[o for o in gc.get_objects() if getattr(o, '__name__', '') == 'mkfifo'][0]('{outside}/{tag}')",
    "proc_parent_environ": "import os\nprint(open('/proc/%d/environ' % os.getppid()).read())",
    "tarfile_traversal": ("import tarfile, io\nb = io.BytesIO()\nt = tarfile.open(fileobj=b, mode='w')\n"
                          "i = tarfile.TarInfo('../../{tag}'); i.size = 1\nt.addfile(i, io.BytesIO(b'x')); t.close()\n"
                          "b.seek(0); tarfile.open(fileobj=b).extractall('.')"),
}

PRIMITIVES = [
    "open({p!r}, 'w').write('x')", "os.mkdir({p!r})", "os.mkfifo({p!r})", "os.rename('main.py', {p!r})",
    "os.symlink('main.py', {p!r})", "shutil.copy('main.py', {p!r})", "os.open({p!r}, os.O_CREAT | os.O_WRONLY)",
    "__import__('sqlite3').connect({p!r}).execute('create table t(x)')", "os.truncate({p!r}, 0)",
    "pathlib.Path({p!r}).touch()", "os.mknod({p!r})", "getattr(os, 'mk' + 'fifo')({p!r})",
    "__import__('posix').mkfifo({p!r})", "shutil.make_archive({p!r}, 'zip', '.')", "os.utime({p!r})",
]
WRAPPERS = ["{s}", "exec({s!r})", "try:\n    {s}\nexcept BaseException:\n    pass",
             "def f():\n    {s}\nf()", "import threading\nt = threading.Thread(target=lambda: {s}); t.start(); t.join()"]




def random_program(rng, outside: str, target: str, tag: str) -> str:
    """A fuzzed hostile program: 1-3 primitives, each on a random path, in a random wrapper."""
    paths = [target, f"{outside}/{tag}", f"../../{tag}", f"/tmp/{tag}", f"/dev/shm/{tag}", f"{outside}/../{tag}"]
    lines = ["import os, shutil, pathlib"]
    for _ in range(rng.randint(1, 3)):
        stmt = rng.choice(PRIMITIVES).format(p=rng.choice(paths))
        lines.append(rng.choice(WRAPPERS).format(s=stmt))
    return "\n".join(lines) + "\n"


PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
CANONICAL = "    return a + b\n"
TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n    assert candidate(20, 22) == 42\n"

FORGERIES: dict[str, str] = {
    "marker_then_sys_exit_0": "def add(a, b):\n    return 0\nprint('__HIERAMAS_PASS__')\nimport sys\nsys.exit(0)\n",
    "marker_then_os_exit_0": "def add(a, b):\n    return 0\nprint('__HIERAMAS_PASS__', flush=True)\nimport os\nos._exit(0)\n",
    "override_assertion_error": ("import builtins\nclass _E(Exception):\n    pass\nbuiltins.AssertionError = _E\n"
                                 "def add(a, b):\n    return 0\n"),
    "always_equal_object": "class _A:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return _A()\n",
    "always_equal_str_subclass": "class _S(str):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return _S('x')\n",
    "exit_inside_the_function": "def add(a, b):\n    raise SystemExit(0)\n",
    "os_exit_inside_the_function": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "atexit_marker": "import atexit\natexit.register(lambda: print('__HIERAMAS_PASS__'))\ndef add(a, b):\n    return 0\n",
    "forged_verdict_file": ("open('verdict.json', 'w').write('{\"passed\": true, \"calls\": 3}')\n"
                            "def add(a, b):\n    return 0\n"),
    "forged_outputs_then_exit": ("open('outputs.json', 'w').write('[{\"ok\": 0}, {\"ok\": 0}, {\"ok\": 0}]')\n"
                                 "import os\nos._exit(0)\n"),
    "patched_json_dumps": ("import json\n_real = json.dumps\njson.dumps = lambda *a, **k: '[]'\n"
                           "def add(a, b):\n    return 0\n"),
    "sys_excepthook_swallow": "import sys\nsys.excepthook = lambda *a: print('__HIERAMAS_PASS__')\ndef add(a, b):\n    assert False\n",
    "keyboard_interrupt": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "huge_output_object": "def add(a, b):\n    return [0] * (10 ** 8)\n",
    "generator_return": "def add(a, b):\n    yield a + b\n",
    "infinite_recursion_repr": "class _R(list):\n    pass\ndef add(a, b):\n    r = _R(); r.append(r); return r\n",
}


def fingerprint(target: Path, outside: Path, tag: str) -> tuple:
    """What containment must leave unchanged: the target's bytes and the host places."""
    digest = hashlib.sha256(target.read_bytes()).hexdigest() if target.exists() else None
    mode = target.stat().st_mode if target.exists() else None
    listing = sorted(os.listdir(outside)) if outside.exists() else None
    stray = [p for p in (Path("/tmp") / tag, Path("/dev/shm") / tag) if os.path.lexists(p)]
    return digest, mode, listing, stray


def make_target(folder: Path) -> Path:
    """A real rollout cache with one record (what the sqlite3 escape rewrote on main)."""
    from hieramas_gnn.llm.cache import RolloutCache
    from hieramas_gnn.llm.types import LLMRecord

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cache.sqlite"
    request = '{"model":"m"}'
    key = hashlib.sha256(request.encode()).hexdigest()
    with RolloutCache(path, "rw") as cache:
        cache.put(LLMRecord(key=key, model="m", text="the answer", prompt_tokens=1, completion_tokens=1,
                            cost_usd=0.0, latency_ms=1.0, cache_hit=False, created_at=0.0), request)
    return path


def add_question():
    from hieramas_gnn.tasks.base import Question

    return Question(id="Hostile/0", task="humaneval", text=PROMPT, gold=CANONICAL,
                    meta={"domain": "code", "entry_point": "add", "prompt": PROMPT, "test": TEST, "split": "test"})
