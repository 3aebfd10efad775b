"""Config plumbing: YAML with `base:` inheritance, dotted overrides, typed coercion, `to_dict`.

Kept apart from `config.py` (which holds the sections users read and edit) so that the field
list stays short to scan. Errors are `ConfigError`s naming the field path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Literal

from hieramas_gnn.errors import ConfigError
from hieramas_gnn.guards import check_regular_file, load_yaml
from hieramas_gnn.paths import atomic_write_text

MAX_INT = 2 ** 53
"""Largest integer a config field takes (larger ones are typos that would overflow later)."""

Problems = Iterator[tuple[str, str]]  # (field, message), what a section's `check()` yields


def positive(name: str, value: float) -> Problems:
    """A problem when `value` is not a finite number > 0."""
    if not math.isfinite(value):
        yield name, f"must be a finite number > 0, got {value}"
    elif not value > 0:
        yield name, f"must be > 0, got {value}"


def non_negative(name: str, value: float) -> Problems:
    """A problem when `value` is not a finite number >= 0."""
    if not math.isfinite(value):
        yield name, f"must be a finite number >= 0, got {value}"
    elif not value >= 0:
        yield name, f"must be >= 0, got {value}"


# ------------------------------------------------------------------------------------ parsing

def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a mapping, recursively; unknown keys raise `ConfigError`.

    Derived fields (`init=False`, e.g. `run.dir`) found in the mapping are accepted and ignored:
    they are recomputed from the fields they derive from (so a `config.yaml` written by an older
    `dump_yaml`, which included them, still loads)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    derived = {f.name for f in dataclasses.fields(cls) if not f.init}
    data = {k: v for k, v in data.items() if k not in derived}
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown config field {', '.join(where + k for k in unknown)} "
            f"(known in {path or 'config'}: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if path and not str(exc).startswith(path):
            raise ConfigError(f"{path}.{exc}") from None
        raise


def _coerce(tp: Any, value: Any, path: str) -> Any:
    """Check / convert one YAML value to the annotated type; errors name `path`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            with contextlib.suppress(ConfigError):
                return _coerce(arg, value, path)
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return origin(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{path}: {value} is out of range (at most {MAX_INT:,})")
        return value
    if tp is float:
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads `3e-4` (no dot) as a string; no other string is a number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{path}: expected a finite number, got {value!r}") from None
        if not math.isfinite(value):  # NaN / inf would slip past every `< 0` check downstream
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        if "\x00" in value:
            raise ConfigError(f"{path}: contains a NUL character")
        return value
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base:' chain")
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    check_regular_file(path, "config file")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    data = load_yaml(text, str(path))
    if data is None:  # an empty file would silently run every default
        raise ConfigError(f"{path}: the file is empty (write the settings to change, or leave out --config)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip() or "\x00" in base:
        raise ConfigError(f"{path}: base: must be the path of another config file (a string), got {base!r}")
    return merge(read_yaml(path.parent / base, seen + (path,)), data)


def merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(overrides: list[str]) -> dict:
    """`["stage1.lr=3e-4", "run.seed=2"]` -> nested dict; values are parsed as YAML scalars."""
    out: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value (e.g. stage1.lr=3e-4)")
        try:
            value = load_yaml(raw, f"override {key.strip()}") if raw.strip() else ""
        except ConfigError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return out


def to_dict(obj: Any, derived: bool = True) -> Any:
    """Like `dataclasses.asdict`, but reads fields without triggering `record_reads`.

    derived: include the derived (`init=False`) fields (wandb's config shows them; a config
             file to load back does not need them)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        values = object.__getattribute__(obj, "__dict__")
        return {f.name: to_dict(values[f.name], derived) for f in dataclasses.fields(obj)
                if derived or f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v, derived) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, derived) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_yaml(cfg: Any, path: Path) -> None:
    """Write the resolved config to `path` as a file `load_config` reads back to an equal config
    (derived fields are left out: loading recomputes them)."""
    import yaml


    atomic_write_text(path, yaml.safe_dump(to_dict(cfg, derived=False), sort_keys=False))  # read on resume


# ------------------------------------------------------------------------------- read tracking

def all_field_paths(cls: type, prefix: str = "") -> list[str]:
    """Every `section.field` path of the config tree (derived fields included)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(all_field_paths(hints[f.name], path + "."))
        else:
            out.append(path)
    return out


@contextlib.contextmanager
def record_reads(cfg: Any) -> Iterator[set[str]]:
    """Within the block, record `section.field` (and `section.sub.field` for nested sections) for
    every field read on `cfg`'s sections.

    Patches `__getattribute__` of the section classes for the duration of the block only
    (a test helper; it is not thread-safe and must not be used in production code).
    """
    reads: set[str] = set()
    patched: list[tuple[type, Any]] = []  # (class, its own __getattribute__ or None)
    owners: dict[int, str] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = object.__getattribute__(obj, f.name)
            if dataclasses.is_dataclass(value):
                owners[id(value)] = f"{prefix}{f.name}"
                walk(value, f"{prefix}{f.name}.")

    walk(cfg, "")
    names = {type(v) for v in _sections(cfg)}
    for cls in names:
        fields = {f.name for f in dataclasses.fields(cls)}
        original = cls.__getattribute__
        own = "__getattribute__" in cls.__dict__

        def getter(self, name, _fields=fields, _original=original):
            if name in _fields and id(self) in owners:
                reads.add(f"{owners[id(self)]}.{name}")
            return _original(self, name)

        patched.append((cls, original if own else None))
        cls.__getattribute__ = getter
    try:
        yield reads
    finally:
        for cls, original in patched:
            if original is None:
                del cls.__getattribute__
            else:
                cls.__getattribute__ = original


def _sections(obj: Any) -> Iterator[Any]:
    for f in dataclasses.fields(obj):
        value = object.__getattribute__(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield value
            yield from _sections(value)


def field_docs(cls: type) -> dict[str, str]:
    """`field -> docstring` of a dataclass section: the string literal right after each annotated
    attribute, in `cls` and the classes it extends (a section may extend a component's settings
    class defined in another module)."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return docs
