"""`hieramas bench --quick --json OUT` runs the whole suite as a smoke test (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieramas_gnn import cli

BENCH = Path(__file__).resolve().parents[1] / "bench"
NAMES = sorted(p.stem[len("bench_"):] for p in BENCH.glob("bench_*.py"))


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.json"
    assert cli.main(["bench", "--quick", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_quick_bench_writes_every_benchmark(quick_results):
    assert set(NAMES) <= set(quick_results)


def test_quick_bench_records_the_machine(quick_results):
    meta = quick_results["_meta"]
    assert meta["quick"] is True and meta["nproc"] >= 1 and meta["cpu_model"]


def test_quick_bench_has_every_benchmarks_figures(quick_results):
    r = quick_results
    assert r["calls"]["direct"]["framework_us"] is not None and r["calls"]["litellm"]["us_per_call"] > 0
    assert r["training"]["replay"]["provider_calls"] == 0 and r["training"]["replay"]["cache_hits"] > 0
    assert r["training"]["cold"]["provider_calls"] > 0
    assert r["scoring"]["k"] == 200 and r["scoring"]["one_query"]["ms"] > 0
    assert r["memory"]["stage1_1k"]["peak_rss_mb"] > 0
    assert [row["roles"] for row in r["scaling"]["roles"]] == [3, 6]
    assert all(Path(p).exists() for p in r["scaling"]["plots"])


def test_unknown_benchmark_is_a_user_error(tmp_path):
    assert cli.main(["bench", "--only", "nope", "--json", str(tmp_path / "r.json")]) == 2
