"""`hieramas demo --quick` end to end in a temp folder, and `hieramas eval` on the policy it exports."""

from __future__ import annotations

import json

import pytest

from hieramas_gnn import cli
from hieramas_gnn.eval.evaluate import ROW_KEYS


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        mp.setenv(var, str(out / "wandb"))
    try:
        code = cli.main(["demo", "--quick", "--seeds", "3", "--out", str(out),
                         "--baselines", "single", "moa", "random", "router", "cascade", "best_single"])
    finally:
        mp.undo()
    assert code == 0
    return out


def test_demo_writes_report_plots_and_results(demo_out):
    for name in ("report.md", "results.json", "pareto.png", "topology.png"):
        assert (demo_out / name).stat().st_size > 0, name


def test_demo_results_json_has_the_baselines_shape(demo_out):
    data = json.loads((demo_out / "results.json").read_text())
    assert data["task"] == "synthetic" and data["backend"] == "sim" and data["n"] > 0
    methods = {r["method"] for r in data["results"]}
    assert {"hieramas", "moa", "random"} <= methods
    routes = [s["route"] for s in data["per_seed"]]
    assert len(routes) == 3  # seeds may end on different routes (a seed whose route is random is its own control)
    assert ("hieramas-random-dag" in methods) == any(r != "random" for r in routes)
    assert all(r["seeds"] == 3 for r in data["results"] if r["method"].startswith("hieramas"))
    assert any(m.startswith("single:") for m in methods)
    for row in data["results"]:
        assert set(ROW_KEYS) <= set(row)
        assert 0.0 <= row["accuracy"] <= 1.0 and row["cost_usd"] >= 0.0


def test_demo_fits_the_routed_baselines_on_train_and_val_and_keeps_per_query_vectors(demo_out):
    data = json.loads((demo_out / "results.json").read_text())
    assert {"router", "cascade", "best_single"} <= {r["method"] for r in data["results"]}
    assert set(data["fitted_baselines"]) == {"best_single", "router_C", "cascade"}
    per_query = json.loads((demo_out / "per_query.json").read_text())
    n = len(per_query["question_ids"])
    assert n == data["n"] and {"hieramas", "router", "cascade"} <= set(per_query["methods"])
    assert all(len(v["correct"]) == len(v["cost"]) == n for v in per_query["methods"].values())
    chosen = data["designs_by_domain"][0]  # seed 0: {domain: {design summary: count}}
    assert sum(c for counts in chosen.values() for c in counts.values()) == n


def test_report_reads_a_demo_folder(demo_out, tmp_path):
    assert cli.main(["report", str(demo_out), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "### The frontier against each baseline" in text and "router" in text


def test_demo_rejects_an_unknown_baseline(tmp_path, capsys):
    assert cli.main(["demo", "--quick", "--out", str(tmp_path), "--baselines", "single", "telepathy"]) == 2
    assert "unknown method 'telepathy'" in capsys.readouterr().err


def test_demo_report_states_the_claims(demo_out):
    text = (demo_out / "report.md").read_text()
    assert "vs best single model" in text and "Mixture-of-Agents" in text and "**hieramas**" in text


def test_demo_exports_a_loadable_policy(demo_out):
    from hieramas_gnn.bundle import load_policy

    policy, meta = load_policy(demo_out / "policy")
    assert meta.pool_name == "sim" and meta.choice["route"] in ("classifier", "random")
    assert meta.extra["topology"]["method"] == "classifier"
    assert sum(p.numel() for p in policy.parameters()) > 0


def test_eval_runs_the_exported_policy_on_held_out_queries(demo_out, tmp_path):
    code = cli.main(["eval", "--policy", str(demo_out / "policy"), "--task", "synthetic", "--offset", "100",
                     "--limit", "4", "--sim-latency", "off", "--cache", str(demo_out / "cache" / "rollouts.sqlite"),
                     "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in data["results"]] == ["hieramas"] and data["n"] == 4


def test_eval_rejects_a_folder_that_is_not_a_bundle(tmp_path):
    assert cli.main(["eval", "--policy", str(tmp_path), "--task", "synthetic"]) == 2


def test_eval_runs_a_fixed_design_file(demo_out, tmp_path):
    from hieramas_gnn.mas.design import Design, Mixture

    design = Design(("planner", "solver"), (Mixture(("flash-science",), "flash-science"), Mixture(("qwen-logic",), "qwen-logic")),
                    ((0, 1),), "qwen-logic")
    path = tmp_path / "chain.json"
    path.write_text(design.to_json())
    code = cli.main(["eval", "--design", str(path), "--task", "synthetic", "--pool", "sim", "--limit", "3", "--sim-latency", "off",
                     "--cache", str(demo_out / "cache" / "rollouts.sqlite"), "--out", str(tmp_path / "out")])
    assert code == 0
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["results"][0]["method"] == "design:chain" and data["results"][0]["calls"] == 3


def test_demo_claims_call_a_gap_within_two_standard_errors_a_tie():
    from hieramas_gnn.eval.experiment import claims as verdict

    rows = [{"method": "hieramas", "accuracy": 0.934, "cost_usd": 7e-4},
            {"method": "single:a", "accuracy": 0.898, "cost_usd": 2e-3},
            {"method": "random", "accuracy": 0.928, "cost_usd": 2e-2},
            {"method": "moa", "accuracy": 0.904, "cost_usd": 8e-3}]
    lines = verdict(rows, n=512)
    assert "BEATS" in lines[0]            # +0.036 > 2 SE (~0.032)
    assert "TIES" in lines[2]             # vs random: +0.006 is 3 queries of 512
    assert "LOWER" in lines[-1]
    assert "does NOT beat" in verdict([dict(rows[0], accuracy=0.85)] + rows[1:], n=512)[0]


def test_demo_claims_are_paired_when_per_query_correctness_is_given():
    """Same accuracies, two verdicts: a paired test sees that the methods differ on few queries."""
    import numpy as np

    from hieramas_gnn.eval import stats

    def compare(h, o, n, paired=None):
        if paired is not None:
            g = stats.paired_gap(*paired)
            return stats.verdict(g.gap, g.band)
        return stats.verdict(h["accuracy"] - o["accuracy"], stats.unpaired_band(h["accuracy"], o["accuracy"], n))

    n = 512
    base = np.zeros(n)
    base[:461] = 1.0  # 0.900
    better = base.copy()
    better[461:476] = 1.0  # right on 15 more queries, wrong on none the other gets right: 0.930
    h, o = {"accuracy": float(better.mean())}, {"accuracy": float(base.mean())}
    assert "TIES" in compare(h, o, n)  # unpaired binomial band ~0.036
    assert "BEATS" in compare(h, o, n, paired=(better, base))  # paired band 2·sd(d)/sqrt(n) ~0.015
    shuffled = np.random.default_rng(0).permutation(better)  # same accuracy, unrelated queries
    assert "TIES" in compare(h, o, n, paired=(shuffled, base))
    assert "does NOT beat" in compare(o, h, n, paired=(base, better))


def test_demo_rejects_zero_eval_runs(tmp_path):
    assert cli.main(["demo", "--quick", "--eval-runs", "0", "--out", str(tmp_path)]) == 2


def test_demo_claims_compare_the_cost_aware_reward_when_given():
    import numpy as np

    from hieramas_gnn.eval.experiment import claims as verdict

    n = 64
    ones = np.ones(n)
    rows = [{"method": "hieramas", "accuracy": 0.9, "cost_usd": 1e-3},
            {"method": "random", "accuracy": 0.9, "cost_usd": 2e-2}]
    per_query = {"hieramas": {"correct": ones * 0.9, "reward": ones * 0.9 - 0.1 + np.linspace(0, 0.01, n)},
                 "random": {"correct": ones * 0.9, "reward": ones * 0.9 - 2.0}}
    lines = verdict(rows, n, per_query)
    assert any("TIES" in line for line in lines if line.startswith("- vs random"))
    reward_line = [line for line in lines if "cost-aware reward, vs random" in line]
    assert len(reward_line) == 1 and "BEATS" in reward_line[0]


def test_pair_runs_pairs_two_demo_folders_overall_and_per_domain(demo_out):
    from experiments.pair_runs import compare

    data, markdown = compare(demo_out, demo_out, "same", [])
    groups = [r["domain"] for r in data["rows"]]
    assert groups[0] == "all" and len(groups) > 2 and all(r["gap"] == 0.0 for r in data["rows"])
    assert data["rows"][0]["n"] == json.loads((demo_out / "results.json").read_text())["n"]
    assert "| hieramas | all |" in markdown
