"""`hieramas demo --quick` end to end in a temp folder, and `hieramas eval` on the policy it exports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hieramas_gnn import cli
from hieramas_gnn.eval.evaluate import ROW_KEYS


STDERR: dict[str, str] = {}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        mp.setenv(var, str(out / "wandb"))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            code = cli.main(["demo", "--quick", "--seeds", "3", "--out", str(out),
                             "--baselines", "single", "moa", "random", "router", "cascade", "best_single"])
    finally:
        mp.undo()
    STDERR["demo"] = err.getvalue()
    assert code == 0, err.getvalue()[-3000:]
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


def test_eval_runs_the_exported_policy_on_its_held_out_questions_by_default(demo_out, tmp_path, capsys):
    cache = str(demo_out / "cache" / "rollouts.sqlite")
    code = cli.main(["eval", "--policy", str(demo_out / "policy"), "--cache", cache, "--out", str(tmp_path / "all")])
    assert code == 0
    data = json.loads((tmp_path / "all" / "results.json").read_text())
    held_out = json.loads((demo_out / "runs" / "seed0" / "split.json").read_text())["test"]
    assert data["split"] == "held-out" and data["n"] == len(held_out) and data["trained_on"] == 0
    err = capsys.readouterr().err
    assert f"on {len(held_out)} held-out questions of task synthetic" in err
    assert f"eval: {len(held_out)}/{len(held_out)}" in err  # progress
    # the sim settings the bundle was trained with (latency off): every call is the demo's, cached
    assert "LLM calls: 0 paid now" in err
    # the recorded split, cut by --limit; the same task named explicitly is still its held-out part
    code = cli.main(["eval", "--policy", str(demo_out / "policy"), "--task", "synthetic", "--limit", "4",
                     "--cache", cache, "--out", str(tmp_path / "four")])
    assert code == 0
    data = json.loads((tmp_path / "four" / "results.json").read_text())
    assert [r["method"] for r in data["results"]] == ["hieramas"] and data["n"] == 4 and data["split"] == "held-out"


def test_eval_of_an_explicit_split_counts_the_questions_the_policy_trained_on(demo_out, tmp_path, capsys):
    from hieramas_gnn.tasks import get_task

    split = json.loads((demo_out / "runs" / "seed0" / "split.json").read_text())
    first = [q.id for q in get_task("synthetic").load(split="test", limit=60)]
    seen = len(set(first) & set(split["train"] + split["val"]))
    assert seen > 0  # the demo's train + val questions are drawn from the same split
    code = cli.main(["eval", "--policy", str(demo_out / "policy"), "--split", "test", "--limit", "60",
                     "--cache", str(demo_out / "cache" / "rollouts.sqlite"), "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["trained_on"] == seen
    assert "not held-out" in capsys.readouterr().err
    assert "NOT held-out" in (tmp_path / "report.md").read_text()


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

    from hieramas_gnn import stats

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
def test_demo_shows_progress_and_a_line_per_phase_on_stderr(demo_out):
    err = STDERR["demo"]
    for phase in ("hieramas: seed 0: training", "hieramas: stage 1:", "hieramas: topology:", "stage1: 6/6",
                  "baselines on 16 test questions:", "seed 2: evaluating on 16 test questions:"):
        assert phase in err, phase
    assert "hieramas: design search" in err or "hieramas: decision model:" in err  # global or per cluster


def test_the_demo_wandb_runs_hold_the_held_out_results_and_every_baseline_in_one_group(demo_out):
    from helpers.wandb_offline import read_run

    results = json.loads((demo_out / "results.json").read_text())
    evaluation = read_run(demo_out / "wandb")
    assert evaluation.job_type == "eval" and evaluation.group == demo_out.name
    assert "demo_quick" in evaluation.tags
    by_method = {r["method"]: r for r in results["results"]}
    assert evaluation.summary["test/accuracy"] == pytest.approx(by_method["hieramas"]["accuracy"])
    assert evaluation.summary["test/cost_usd"] == pytest.approx(by_method["hieramas"]["cost_usd"])
    for method, row in by_method.items():
        if method != "hieramas":
            assert evaluation.summary[f"baselines/{method}/accuracy"] == pytest.approx(row["accuracy"]), method
            assert evaluation.summary[f"baselines/{method}/cost_usd"] == pytest.approx(row["cost_usd"]), method
    assert evaluation.summary["llm/total_usd"] == pytest.approx(
        evaluation.summary["llm/paid_usd"] + evaluation.summary["llm/cached_usd"])
    assert evaluation.summary["results/nrows"] == len(results["results"])
    assert evaluation.summary["chosen_designs/nrows"] > 0
    assert evaluation.summary["per_seed/nrows"] == 3  # each seed's held-out accuracy and cost
    per_seed = results["per_seed"]
    learned = by_method["hieramas"]
    assert np.mean([s["accuracy"] for s in per_seed]) == pytest.approx(learned["accuracy"])
    assert np.mean([s["cost_usd"] for s in per_seed]) == pytest.approx(learned["cost_usd"])
    for seed in range(3):
        training = read_run(demo_out / "runs" / f"seed{seed}" / "wandb")
        assert (training.group, training.job_type) == (demo_out.name, "train")


def test_experiment_names_a_missing_config_and_demo_is_it_on_the_default(tmp_path, capsys):
    from hieramas_gnn.cli import build_parser

    assert cli.main(["experiment", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
    args = build_parser().parse_args(["experiment", "--config", "c.yaml", "--tag", "ablation", "--name", "lambda50"])
    assert (args.tags, args.name, args.wandb, args.seeds) == (["ablation"], "lambda50", "auto", 3)
    demo = build_parser().parse_args(["demo", "--quick"])
    assert demo.wandb == "offline" and demo.out == "runs/demo"
