"""The package dependency direction of docs/ARCHITECTURE.md, checked on every import statement
(module level and inside functions): a wrong arrow fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hieramas_gnn"
EXPERIMENTS = PKG.parent / "experiments"

BASE = {"errors", "paths", "redact", "guards"}
# package -> the project packages it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "paths": set(),
    "redact": set(),
    "guards": {"errors"},
    "config_io": BASE,
    "config": BASE | {"config_io"},
    "tracking": BASE | {"config", "config_io"},
    "tasks": BASE,
    "llm": BASE | {"tasks"},
    "backends": BASE | {"tasks", "llm"},
    "mas": BASE | {"tasks", "llm"},
    "distributed": BASE | {"config", "config_io", "tasks", "llm", "backends", "mas"},
    "policy": BASE | {"tasks", "llm", "mas", "config", "config_io"},
    "export": BASE | {"tasks", "llm", "mas", "policy"},
    "bundle_trust": BASE | {"tasks", "llm", "mas"},
    "train": BASE | {"config", "config_io", "tracking", "tasks", "llm", "backends", "mas", "distributed", "policy", "export"},
    "eval": BASE | {"config", "config_io", "tracking", "tasks", "llm", "backends", "mas", "distributed", "policy", "export", "train"},
    "serve": BASE | {"config", "config_io", "tasks", "llm", "backends", "mas", "policy", "export", "bundle_trust",
              "train", "eval"},
}
TOP = {"commands", "cli", "__init__", "__main__"}  # may import anything
# The one upward arrow: the client registers the offline providers when it is built (lazily,
# inside a function), so `litellm.completion("sim/...")` works for anyone holding a client.
EXCEPTIONS = {("llm/client.py", "backends")}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(top-level hieramas_gnn package imported, line) for every import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "hieramas_gnn":
                names = [f"hieramas_gnn.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hieramas_gnn" and len(parts) > 1 and not parts[1].startswith("__"):
                out.append((parts[1], node.lineno))
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_package_is_placed():
    found = {_package(p) for p in PKG.rglob("*.py")}
    assert found - set(ALLOWED) - TOP == set(), "a new package needs its place in ALLOWED (and ARCHITECTURE.md)"


def test_imports_follow_the_dependency_direction():
    wrong = []
    for path in sorted(PKG.rglob("*.py")):
        pkg = _package(path)
        if pkg in TOP:
            continue
        rel = str(path.relative_to(PKG))
        for target, line in _imports(path):
            if target == pkg or target in ALLOWED[pkg] or (rel, target) in EXCEPTIONS:
                continue
            wrong.append(f"{rel}:{line} imports hieramas_gnn.{target} ({pkg} may use {sorted(ALLOWED[pkg])})")
    assert not wrong, "\n".join(wrong)


def test_experiments_call_the_library_not_commands():
    wrong = [f"{p.relative_to(EXPERIMENTS)}:{line}" for p in sorted(EXPERIMENTS.rglob("*.py"))
             for target, line in _imports(p) if target in ("commands", "cli")]
    if wrong:
        pytest.xfail("experiments still import commands: " + ", ".join(wrong))


def test_the_checker_catches_a_wrong_arrow(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from hieramas_gnn.eval import baselines\n")
    assert _imports(bad) == [("eval", 2)]
    assert "eval" not in ALLOWED["train"]
