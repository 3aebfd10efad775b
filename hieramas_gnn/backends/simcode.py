"""Wrong programs for the simulator: a deterministic mutation of the reference solution.

A simulated model that gets a code item wrong still answers with a real program, so scoring
executes it in the sandbox like any other reply. The mutation flips one operator the program
uses (comparison, arithmetic, boolean, an integer constant off by one), chosen by the call's
generator; a program with nothing to flip gets its return values replaced by `None`. A mutant
can, rarely, still pass the tests (an equivalent mutant) — that is kept, as with a real model.
"""

from __future__ import annotations

import ast

import numpy as np

_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.And: ast.Or,
    ast.Or: ast.And, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv,
}


def _sites(tree: ast.AST) -> list[ast.AST]:
    out: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _SWAPS:
            out.append(node)
        elif isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in _SWAPS:
            out.append(node)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            out.append(node)
    return out


def _mutate(node: ast.AST) -> None:
    if isinstance(node, ast.Compare):
        node.ops[0] = _SWAPS[type(node.ops[0])]()
    elif isinstance(node, (ast.BinOp, ast.BoolOp)):
        node.op = _SWAPS[type(node.op)]()
    elif isinstance(node, ast.Constant):
        node.value = node.value + 1


def _dedent_body(code: str) -> tuple[str, bool]:
    """HumanEval references are indented function bodies; wrap them so they parse."""
    try:
        ast.parse(code)
        return code, False
    except SyntaxError:
        return "def __body__():\n" + code, True


def mutate_program(code: str, rng: np.random.Generator) -> str:
    """A wrong variant of `code` (same layout: a body stays a body)."""
    src, wrapped = _dedent_body(code)
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return code + "\n    return None\n"
    sites = _sites(tree)
    if sites:
        _mutate(sites[int(rng.integers(len(sites)))])
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Return):
                node.value = ast.Constant(value=None)
    out = ast.unparse(tree)
    if wrapped:
        lines = out.splitlines()[1:]  # drop `def __body__():`, keep the 4-space indented body
        out = "\n".join(lines)
    return out + "\n"
