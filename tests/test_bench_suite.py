"""The benchmark suite stays runnable: every bench/bench_*.py offers `run(quick)` for bench.run."""

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("path", sorted(BENCH.glob("bench_*.py")), ids=lambda p: p.stem)
def test_benchmark_module_exposes_run_with_quick(path):
    tree = ast.parse(path.read_text())
    funcs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "run" in funcs, f"{path.name} has no top-level run(quick) for bench.run"
    assert [a.arg for a in funcs["run"].args.args][:1] == ["quick"]


def test_results_file_has_an_entry_per_benchmark():
    import json

    results = json.loads((BENCH / "results.json").read_text())
    names = {p.stem[len("bench_"):] for p in BENCH.glob("bench_*.py")}
    assert names <= set(results), f"bench/results.json lacks {sorted(names - set(results))}"
