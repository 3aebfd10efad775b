"""Guards shared by the commands: never damage what a command did not create, never read
unbounded or special input, never let a non-finite number into a price or a budget.

- `check_apart(out, flag, others)`: an output path may not be (or contain) an input, the cache or
  the run folder; the error names both flags.
- `check_regular_file(path, what)`: a FIFO, device or socket is refused before it is opened (an
  `open` on a FIFO blocks forever).
- `folder_lock(folder, what)`: an exclusive lock (`<folder>/.lock`, `flock`) held for a command's
  lifetime; a second command on the same folder gets a clear error, not a race.
- `load_yaml(text, where)`: `yaml.safe_load` with bounded nesting and a bounded size after alias
  expansion (a "billion laughs" file is refused instead of exhausting memory later).
- `finite_number(value, what, minimum=0)`: a finite number >= minimum, or a `UserError`.
- `json_safe(obj)`: the same object with every NaN / inf float replaced by None, so that
  `json.dumps(..., allow_nan=False)` writes strict JSON; `dumps(obj)` is `json.dumps` of it.
"""

from __future__ import annotations

import math
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from hieramas_gnn.errors import ConfigError, UserError

MAX_YAML_DEPTH = 100
"""Deepest nesting of mappings / lists a YAML file may have."""
MAX_YAML_VALUES = 1_000_000
"""Most values (scalars, lists, mappings) a YAML file may expand to, aliases expanded."""


# -- paths -------------------------------------------------------------------------------------

def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file or folder (symlinks and hard links included)."""
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return _resolved(a) == _resolved(b)


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies inside it."""
    p, f = _resolved(path), _resolved(folder)
    return p == f or f in p.parents


def check_apart(out: str | Path | None, flag: str, others: Mapping[str, str | Path | None]) -> None:
    """Refuse an output path that is one of `others` (inputs, the cache, a run folder), one of the
    cache's side files (`-wal`, `-shm`), or a folder holding one of them."""
    if out is None:
        return
    for other_flag, other in others.items():
        if other is None or str(other) == "":
            continue
        sides = [other, f"{other}-wal", f"{other}-shm", f"{other}-journal"]
        if any(same_path(out, s) for s in sides):
            raise UserError(f"{flag} {out}: is the same path as {other_flag} {other}; writing it would "
                            f"destroy {other_flag}. Give another path")
        if is_within(other, out) and not same_path(other, out):
            raise UserError(f"{flag} {out}: holds {other_flag} {other}; writing it would destroy "
                            f"{other_flag}. Give another path")


def check_report_out(out: str | Path | None, flag: str, markers: tuple[str, ...] = ("results.json",)) -> None:
    """A folder a command writes its report into (report.md, results.json, plots) is new, empty, or
    one this command wrote before (it holds one of `markers`); never a folder of the user's files."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {out}: is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not any((path / m).exists() for m in markers):
        raise UserError(f"{flag} {out}: folder holds other files and no earlier output of this command "
                        f"({' or '.join(markers)}); give a new or empty folder")


def check_overwrite(path: str | Path | None, flag: str, ours: Callable[[str], bool], what: str) -> None:
    """An existing file at an output path is replaced only when its first line looks like this
    command's own output (`ours(first_line)`); a file of the user's is refused."""
    if path is None:
        return
    p = Path(path)
    check_regular_file(p, flag)
    if not p.is_file() or p.stat().st_size == 0:
        return
    try:
        with open(p, encoding="utf-8") as fh:
            first = fh.readline(1 << 20)
    except (UnicodeDecodeError, OSError):
        first = ""
    if not ours(first):
        raise UserError(f"{flag} {path}: exists and is not {what}; refusing to overwrite it (give a new file name)")


MAX_OWN_JSON_BYTES = 256 << 20  # an earlier output this large is not read to be recognised


def check_json_output(path: str | Path | None, flag: str, keys: tuple[str, ...], what: str) -> None:
    """An output JSON file is new, empty, or this command's own earlier output: a JSON object
    holding every one of `keys` (what the command writes). Any other file is the user's: refused."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        return
    check_regular_file(p, flag)
    if p.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    if p.stat().st_size == 0:
        return
    import json

    obj = None
    if p.stat().st_size <= MAX_OWN_JSON_BYTES:
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            obj = None
    if not (isinstance(obj, dict) and all(k in obj for k in keys)):
        raise UserError(f"{flag} {path}: exists and is not {what}; refusing to overwrite it (give a new file name)")


def looks_like_json_object(line: str, *keys: str) -> bool:
    """Whether `line` is (the start of) a JSON object holding `keys` (for one-line records)."""
    import json

    try:
        obj = json.loads(line)
    except ValueError:
        return line.strip() == "{" and not keys  # an indented JSON file's first line
    return isinstance(obj, dict) and all(k in obj for k in keys)


def check_regular_file(path: str | Path, what: str) -> None:
    """UserError when `path` exists but is not a regular file or folder (a FIFO, device, socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise UserError(f"{what} {path}: is {kind}, not a regular file; refusing to read or write it")


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (creating it) for the block; a second holder is refused."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"{what} {folder} is in use by another hieramas process (pid {holder}); wait for "
                            "it to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the lock (a killed process releases it too)


# -- numbers -----------------------------------------------------------------------------------

def finite_number(value: Any, what: str, minimum: float | None = 0.0) -> float:
    """`value` as a float when it is a finite number >= `minimum`; else a UserError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{what}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{what}: must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"{what}: must be >= {minimum:g}, got {value!r}")
    return float(value)


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None (strict JSON has no NaN / Infinity);
    numpy / torch scalars and arrays become Python numbers and lists first."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if type(obj).__module__ in ("numpy", "torch") and hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` of `json_safe(obj)`: never a bare NaN / Infinity in a file we write."""
    import json

    return json.dumps(json_safe(obj), **kwargs)


# -- YAML --------------------------------------------------------------------------------------

def load_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load(text)` with nesting at most MAX_YAML_DEPTH and at most MAX_YAML_VALUES
    values once aliases are expanded; a ConfigError naming `where` otherwise (syntax errors too)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply (more than {MAX_YAML_DEPTH} levels)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML{at} ({getattr(exc, 'problem', None) or 'syntax error'})") from None
    check_size(data, where)
    return data


def check_size(data: Any, where: str, max_depth: int = MAX_YAML_DEPTH, max_values: int = MAX_YAML_VALUES) -> None:
    """Walk `data` (iteratively, shared references counted each time they appear) and refuse
    nesting deeper than `max_depth` or more than `max_values` values."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise ConfigError(f"{where}: expands to more than {max_values:,} values (YAML aliases "
                              "repeating a large block?); refusing to read it")
        if depth > max_depth:
            raise ConfigError(f"{where}: nested too deeply (more than {max_depth} levels)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node if isinstance(k, tuple))
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)
