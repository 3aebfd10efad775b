"""`hieramas bench --quick --json OUT` runs each benchmark as a smoke test (no timing assertions).

One test per benchmark, on one shared `--quick` run of them all (one process start instead of one
per benchmark, as `hieramas bench` runs them), except the Ray benchmark (a cluster of its own, run
alone: `--only ray`). `bench.run` itself (the table, `_meta`, keeping the entries of benchmarks not
run, the summary) is tested on the shared run; the summary's assembly on results dicts given
directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import summary
from hieramas_gnn import cli
from hieramas_gnn.paths import shared_data_dir
from tests.conftest import require_shared

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
    "policy_load": lambda r: r["cpu_s"] > r["python_cpu_s"] > 0 and r["in_child"]["load_s"] > 0,
    "design": lambda r: (r["unseen"]["n"] == 5 and r["unseen"]["p50_ms"] > 0
                         and r["batched"]["n"] == 20 and r["batched"]["questions_per_s"] > 0),
    "serve_cpu": lambda r: r["errors"] == 0 and r["requests"] == 8 and r["cpu_ms_per_request"] > 0,
    "frontier": lambda r: r["cpu_s_per_seed"] > 0 and r["search_designs"] and r["ok"] is None,
    "pytest": lambda r: "wall_s" in r and r["target"] == "<= 300 s",
}


# Benchmarks whose quick runs share one `bench.run` process (one torch import, one sim bundle's
# worth of set-up), on one xdist worker: each still has its own test below.
ALONE = "ray"
SHARED = tuple(n for n in NAMES if n != ALONE)
# benchmarks that read ../shared/data (their quick run trains on a real task's questions)
NEEDS_SHARED = {"frontier": "outcomes/math_l5_questions.jsonl"}
RUN = tuple(n for n in SHARED if n not in NEEDS_SHARED or (shared_data_dir() / NEEDS_SHARED[n]).exists())


def test_quick_bench_runs_a_benchmark_alone(tmp_path):
    results = quick(ALONE, tmp_path / "results.json")
    assert set(results) == {ALONE, "_meta", "summary", "summary_detail"} and results["_meta"]["last_run"] == [ALONE]
    assert results[ALONE]["bench_wall_s"] >= 0 and results[ALONE]["_stamp"]["quick"] is True
    assert CHECKS[ALONE](results[ALONE]), results[ALONE]


@pytest.fixture(scope="module")
def shared_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-shared") / "results.json"
    out.write_text(json.dumps({ALONE: {"kept": True}}))  # an entry of a benchmark not run: kept as it is
    assert cli.main(["bench", "--quick", *[arg for n in RUN for arg in ("--only", n)], "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.xdist_group("bench-quick-shared")
@pytest.mark.parametrize("name", SHARED)
def test_quick_bench_runs_each_shared_benchmark(name, shared_quick):
    assert name in NAMES
    if name in NEEDS_SHARED:
        require_shared(NEEDS_SHARED[name])  # skips without ../shared/data (fails under CI=true)
    results = shared_quick
    assert set(results) == {*RUN, ALONE, "_meta", "summary", "summary_detail"}
    assert results["_meta"]["last_run"] == list(RUN)
    assert results[name]["bench_wall_s"] >= 0 and results[name]["_stamp"]["quick"] is True
    assert CHECKS[name](results[name]), results[name]


@pytest.mark.xdist_group("bench-quick-shared")
def test_quick_bench_records_the_machine_and_keeps_other_entries(shared_quick):
    meta = shared_quick["_meta"]
    assert meta["quick"] is True and meta["nproc"] >= 1 and meta["cpu_model"]
    assert shared_quick[ALONE] == {"kept": True} and "design" in shared_quick
    # an unstamped entry gives no figure; the quick entries give none either
    assert all(shared_quick["summary"][k] is None for k in summary.KEYS)
    assert shared_quick["summary"]["machine"]["nproc"] == meta["nproc"]


def test_unknown_benchmark_is_a_user_error(tmp_path):
    assert cli.main(["bench", "--only", "nope", "--json", str(tmp_path / "r.json")]) == 2


def _entry(quick: bool = False, stamp_commit: str = "abc1234", **fields) -> dict:
    return {**fields, "_stamp": {"when": "2026-12-01T00:00:00Z", "commit": stamp_commit, "quick": quick}}


def test_summary_is_assembled_from_stamped_entries_with_null_for_missing_ones():
    results = {
        "_meta": {"nproc": 2, "cpu_model": "AMD EPYC", "commit": "def5678"},
        "training": _entry(replay={"eps_per_cpu_s": 50.0}, replay_1_thread={"eps_per_cpu_s": 230.8}),
        "scoring": _entry(stamp_commit="1111111", one_query={"ms": 12.5}),
        "design": _entry(quick=True, unseen={"p50_ms": 8.0}, batched={"questions_per_s": 500.0}),
        "policy_load": {"cpu_s": 1.0},  # no stamp: not a figure
        "memory": _entry(stage1_10k={"peak_rss_mb": 600}),  # no demo run: its figures are missing
        "pytest": _entry(wall_s=280.0, when="2026-11-30T10:00:00Z", commit="2222222"),
    }
    s, detail = summary.assemble(results)
    assert list(s) == [*summary.KEYS, "machine"] and set(detail) == set(summary.KEYS)
    assert s["machine"] == {"nproc": 2, "cpu_model": "AMD EPYC", "commit": "def5678"}
    assert s["replay_train_episodes_per_cpu_s"] == 230.8  # the one-thread figure (training's default)
    assert detail["replay_train_episodes_per_cpu_s"]["source"] == "training.replay_1_thread.eps_per_cpu_s"
    assert detail["replay_train_episodes_per_cpu_s"]["met"] is False
    assert s["k200_scoring_ms"] == 12.5 and detail["k200_scoring_ms"]["met"] is True
    assert detail["k200_scoring_ms"]["stamp"] == {"when": "2026-12-01T00:00:00Z", "commit": "1111111"}
    assert detail["k200_scoring_ms"]["target"] == "<= 20"
    # the test-suite time is dated by the recorded run, not by the benchmark that read it
    assert s["pytest_wall_s"] == 280.0 and detail["pytest_wall_s"]["stamp"]["commit"] == "2222222"
    assert detail["pytest_wall_s"]["stamp"]["read_by"]["commit"] == "abc1234"
    for key in ("frontier_point_cpu_s_per_seed", "policy_load_cpu_s", "design_unseen_ms_p50", "design_batched_per_s",
                "demo_cpu_s", "demo_peak_rss_mb", "serve_cpu_ms_per_request"):
        assert s[key] is None and detail[key]["met"] is None and detail[key]["missing"], key
    assert "--quick" in detail["design_unseen_ms_p50"]["missing"]
    assert "_stamp" in detail["policy_load_cpu_s"]["missing"]
    # rebuilt in place, and the summary of an empty file is all null
    assert summary.refresh(results)["summary"] == s
    empty, _ = summary.assemble({})
    assert all(empty[k] is None for k in summary.KEYS)


def test_committed_results_summary_is_the_one_its_entries_give():
    results = json.loads((BENCH / "results.json").read_text())
    s, detail = summary.assemble(results)
    assert results["summary"] == s and results["summary_detail"] == detail
