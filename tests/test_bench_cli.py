"""`hieramas bench --quick --json OUT` runs each benchmark as a smoke test (no timing assertions).

One test per benchmark (`--only NAME`), so the xdist workers share them; `bench.run` itself (the
table, `_meta`, keeping the entries of benchmarks not run) is tested on the cheapest one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieramas_gnn import cli

BENCH = Path(__file__).resolve().parents[1] / "bench"
NAMES = sorted(p.stem[len("bench_"):] for p in BENCH.glob("bench_*.py"))


def quick(name: str, out: Path) -> dict:
    assert cli.main(["bench", "--quick", "--only", name, "--json", str(out)]) == 0
    return json.loads(out.read_text())


CHECKS = {
    "calls": lambda r: r["direct"]["framework_us"] is not None and r["litellm"]["us_per_call"] > 0,
    "training": lambda r: (r["replay"]["provider_calls"] == 0 and r["replay"]["cache_hits"] > 0
                           and r["cold"]["provider_calls"] > 0),
    "scoring": lambda r: r["k"] == 200 and r["one_query"]["ms"] > 0,
    "memory": lambda r: r["stage1_200"]["peak_rss_mb"] > 0,
    "scaling": lambda r: [row["roles"] for row in r["roles"]] == [3, 6] and all(Path(p).exists() for p in r["plots"]),
    "serve": lambda r: r["errors"] == 0 and r["requests"] == 64,
    "ray": lambda r: r["latency_bound"]["1_worker"]["rollouts"] == 8 and r["latency_bound"]["2_workers"]["failed"] == 0,
    "policy": lambda r: r["embedder"] == "HashingEmbedder" and r["forward_all_heads_s"] > 0,
    "cache": lambda r: r["lookup"] and r["client_hit"],
    "executor": lambda r: r["overhead"] and r["critical_path"],
    "parsing": lambda r: r["size_mb"] == 0.5 and "last_boxed" in r,
}


@pytest.mark.parametrize("name", NAMES)
def test_quick_bench_runs_each_benchmark(name, tmp_path):
    results = quick(name, tmp_path / "results.json")
    assert set(results) == {name, "_meta"} and results["_meta"]["last_run"] == [name]
    assert results[name]["bench_wall_s"] >= 0
    assert CHECKS[name](results[name]), results[name]


def test_quick_bench_records_the_machine_and_keeps_other_entries(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"calls": {"kept": True}}))
    results = quick("executor", out)
    meta = results["_meta"]
    assert meta["quick"] is True and meta["nproc"] >= 1 and meta["cpu_model"]
    assert results["calls"] == {"kept": True} and "executor" in results


def test_unknown_benchmark_is_a_user_error(tmp_path):
    assert cli.main(["bench", "--only", "nope", "--json", str(tmp_path / "r.json")]) == 2
