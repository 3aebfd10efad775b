"""The package dependency direction of docs/ARCHITECTURE.md, checked on every import statement
(module level and inside functions): a wrong arrow or an import circle fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / "hieramas_gnn"
EXPERIMENTS = PKG.parent / "experiments"

BASE = {"errors", "paths", "redact", "version", "guards", "progress", "stats"}
# package (or top-level module) -> the project packages it may import (itself always allowed),
# from the bottom layer up: each may use only what is listed before it.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "version": set(),
    "paths": set(),
    "redact": set(),
    "guards": {"errors"},
    "progress": set(),
    "stats": set(),
    "config_io": BASE,
    "tasks": BASE | {"config_io"},
    "llm": BASE | {"config_io", "tasks"},
    "backends": BASE | {"config_io", "tasks", "llm"},
    "mas": BASE | {"config_io", "tasks", "llm"},
    "policy": BASE | {"config_io", "tasks", "llm", "mas"},
    "config": BASE | {"config_io", "llm", "mas", "policy"},  # composes the components' settings
    "tracking": BASE | {"config_io", "config"},
    "distributed": BASE | {"config_io", "tasks", "llm", "mas"},
    "bundle": BASE | {"config_io", "tasks", "llm", "mas", "policy"},
    "bundle_trust": BASE | {"config_io", "tasks", "llm", "mas"},
    "build": BASE | {"config_io", "config", "tasks", "llm", "mas", "policy", "distributed"},
    "train": BASE | {"config_io", "config", "tracking", "tasks", "llm", "mas", "policy", "distributed",
                     "bundle", "build"},
    "eval": BASE | {"config_io", "config", "tracking", "tasks", "llm", "backends", "mas", "policy",
                    "distributed", "bundle", "build", "train"},
    "serve": BASE | {"config_io", "tasks", "llm", "backends", "mas", "policy", "bundle", "bundle_trust",
                     "build"},
    "pool_add": BASE | {"config_io", "tasks", "llm", "mas", "policy", "distributed", "bundle", "bundle_trust",
                        "build", "serve", "train"},  # train: the one reward definition (its check scores with it)
}
TOP = {"commands", "cli", "__init__", "__main__"}  # may import anything


def _imports(path: Path) -> list[tuple[str, int]]:
    """(top-level hieramas_gnn package imported, line) for every import in the file."""
    return [(name.split(".")[1], line) for name, line in _import_names(path)
            if name.count(".") >= 1 and not name.split(".")[1].startswith("__")]


def _import_names(path: Path) -> list[tuple[str, int]]:
    """(dotted hieramas_gnn name imported, line): modules, or `module.name` for `from m import name`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("hieramas_gnn")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("hieramas_gnn"):
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> nx.DiGraph:
    """Module -> module it imports (at module top or inside a function), project modules only."""
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target, _ in _import_names(path):
            while target and target not in modules:  # `from pkg.mod import name` -> pkg.mod
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):  # a package's own __init__
                graph.add_edge(name, target)
    return graph


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
            if target == pkg or target in ALLOWED[pkg]:
                continue
            wrong.append(f"{rel}:{line} imports hieramas_gnn.{target} ({pkg} may use {sorted(ALLOWED[pkg])})")
    assert not wrong, "\n".join(wrong)


def test_allowed_arrows_form_no_circle():
    graph = nx.DiGraph([(a, b) for a, targets in ALLOWED.items() for b in targets if a != b])
    assert nx.is_directed_acyclic_graph(graph), list(nx.simple_cycles(graph))


def test_no_module_imports_itself_through_others():
    circles = [sorted(c) for c in nx.strongly_connected_components(module_graph()) if len(c) > 1]
    assert circles == [], f"import circles (top-level or in-function imports): {circles}"


def test_serving_never_imports_training():
    reached = nx.descendants(module_graph(), "hieramas_gnn.serve.policy") | nx.descendants(
        module_graph(), "hieramas_gnn.serve.app")
    assert not {m for m in reached if m.startswith("hieramas_gnn.train")}


def test_experiments_call_the_library_not_commands():
    wrong = [f"{p.relative_to(EXPERIMENTS)}:{line}" for p in sorted(EXPERIMENTS.rglob("*.py"))
             for target, line in _imports(p) if target in ("commands", "cli")]
    assert not wrong, "experiments import commands / cli (use the library instead): " + ", ".join(wrong)


def test_the_checkers_catch_a_wrong_arrow_and_a_circle(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from hieramas_gnn.eval import baselines\n")
    assert _imports(bad) == [("eval", 2)]
    assert "eval" not in ALLOWED["train"]
    circle = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")])
    assert [c for c in nx.strongly_connected_components(circle) if len(c) > 1]
