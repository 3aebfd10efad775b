"""`hieramas report`: the learned frontier against every baseline point, from experiment folders
(`results.json` + `per_query.json` as `run_experiment` writes them), with planted numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hieramas_gnn.cli import main as cli
from hieramas_gnn.errors import UserError
from hieramas_gnn.eval.frontier import frontier_checks, group_experiments, learned_points, baseline_points, load_experiment

N = 200


def _row(method, acc, cost, seeds=3):
    return {"method": method, "seeds": seeds, "accuracy": acc, "accuracy_std": 0.01, "cost_usd": cost,
            "cost_usd_std": 0.0, "tokens": 1, "calls": 1, "latency_ms_p50": 0}


def _vector(acc, rng):
    v = np.zeros(N)
    v[rng.choice(N, int(round(acc * N)), replace=False)] = 1
    return v


def _folder(tmp_path, name, lam, learned, baselines, qids=None, seed=0):
    """An experiment folder: the learned point (acc, cost) at λ and baseline points; per-query
    vectors nested so that a more accurate method is right wherever a less accurate one is."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    folder = tmp_path / name
    folder.mkdir()
    rows = [_row("hieramas", *learned)] + [_row(m, a, c, 1) for m, (a, c) in baselines.items()]
    methods = {}
    for r in rows:
        v = np.zeros(N)
        v[order[:int(round(r["accuracy"] * N))]] = 1
        methods[r["method"]] = {"correct": v.tolist(), "cost": [r["cost_usd"]] * N}
    meta = {"task": "math_l5", "backend": "replay", "n": N, "pool": "p.yaml", "reward": f"hieramas, lambda={lam}",
            "overrides": [f"reward.cost_lambda={lam}"], "seeds": 3,
            "designs_by_domain": [{"algebra": {"single m1": 3, "vote of 3 [a, b, c] -> d on disagreement": 1}}]}
    (folder / "results.json").write_text(json.dumps({**meta, "results": rows}))
    (folder / "per_query.json").write_text(json.dumps({"question_ids": qids or [f"q{i}" for i in range(N)],
                                                       "methods": methods}))
    return folder


BASE = {"best_single": (0.60, 1.0e-4), "vote": (0.70, 8.0e-3), "moa": (0.66, 9.0e-3), "router": (0.61, 2.0e-4)}


def test_the_frontier_is_judged_against_each_baseline_point(tmp_path):
    cheap = _folder(tmp_path, "l3000", 3000, (0.60, 1.0e-4), BASE)
    rich = _folder(tmp_path, "l0", 0, (0.74, 3.0e-3), BASE)
    exps = [load_experiment(cheap), load_experiment(rich)]
    (group,) = group_experiments(exps).values()
    checks = {c["baseline"]: c for c in frontier_checks(learned_points(group), baseline_points(group), N)}
    assert checks["best_single"]["verdict"] == "MATCHES"  # same accuracy at the same cost
    assert checks["router"]["verdict"] == "MATCHES"  # 0.01 below, inside two paired standard errors
    assert checks["router"]["learned"] == "hieramas, lambda=3000"  # the λ=0 point costs more than the router
    assert checks["vote"]["verdict"] == "BEATS" and checks["vote"]["learned"] == "hieramas, lambda=0"
    assert checks["moa"]["verdict"] == "BEATS"  # 0.74 > 0.66 at a third of MoA's cost


def test_a_baseline_cheaper_than_every_learned_point_has_no_point_and_a_worse_point_loses(tmp_path):
    folder = _folder(tmp_path, "l0", 0, (0.50, 5.0e-3), {"best_single": (0.60, 1.0e-4), "vote": (0.70, 8.0e-3),
                                                         "moa": (0.66, 9.0e-3)})
    group = [load_experiment(folder)]
    checks = {c["baseline"]: c for c in frontier_checks(learned_points(group), baseline_points(group), N)}
    assert checks["best_single"]["verdict"] == "NO POINT"
    assert checks["vote"]["verdict"] == "LOSES" and checks["vote"]["gap"] == pytest.approx(-0.20)
    assert checks["moa"]["verdict"] == "NO POINT"  # 5e-3 is not under half of 9e-3


def test_folders_on_different_test_questions_are_refused(tmp_path):
    a = _folder(tmp_path, "a", 0, (0.6, 1e-4), BASE)
    b = _folder(tmp_path, "b", 1000, (0.6, 1e-4), BASE, qids=[f"other{i}" for i in range(N)])
    with pytest.raises(UserError, match="different test questions"):
        group_experiments([load_experiment(a), load_experiment(b)])


def test_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    assert cli(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_report_writes_markdown_plot_and_json(tmp_path, capsys):
    folders = [_folder(tmp_path, "l3000", 3000, (0.60, 1.0e-4), BASE), _folder(tmp_path, "l0", 0, (0.74, 3.0e-3), BASE)]
    out = tmp_path / "report"
    assert cli(["report", *map(str, folders), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "0.740 ± 0.010" in text and "**BEATS**" in text and "single m1 (75%)" in text
    assert (out / "frontier_math_l5_p.png").stat().st_size > 1000
    summary = json.loads((out / "report.json").read_text())
    assert [p["label"] for p in summary["math_l5|p.yaml"]["learned"]] == ["hieramas, lambda=3000", "hieramas, lambda=0"]
    assert "vs vote: BEATS" in capsys.readouterr().out


def test_design_summary_names_the_simple_designs():
    from hieramas_gnn.mas.design import Design, Mixture

    roles = ("a", "b", "c")
    single = Design(roles, (Mixture(("m1",), "m1"), None, None), (), "d", "all")
    vote = Design(roles, tuple(Mixture((m,), m) for m in ("m1", "m2", "m3")), (), "d", "all")
    moa = Design(roles, (Mixture(("m1", "m2"), "m3"), None, None), (), "d", "all")
    chain = Design(roles, tuple(Mixture((m,), m) for m in ("m1", "m2", "m3")), ((0, 1), (1, 2)), "d", "sinks")
    assert single.summary() == "single m1"
    assert vote.summary() == "vote of 3 [m1, m2, m3] -> d on disagreement"
    assert moa.summary() == "moa 2 [m1, m2] -> m3"
    assert chain.summary() == "3 roles, 2 edges, 4 calls"
    assert Design(roles, (None, None, None), (), "d", "all").summary() == "d alone (every role skipped)"


def test_ablation_table_pairs_each_variant_with_the_base(tmp_path, capsys):
    base = _folder(tmp_path, "base", 3000, (0.60, 1.0e-4), BASE)
    worse = _folder(tmp_path, "worse", 3000, (0.50, 1.0e-4), BASE)
    same = _folder(tmp_path, "same", 3000, (0.60, 2.0e-4), BASE)
    out = tmp_path / "ablations"
    assert cli(["report", str(worse), str(same), "--against", str(base), "--out", str(out)]) == 0
    rows = json.loads((out / "report.json").read_text())["ablations"]
    assert [r["verdict"] for r in rows] == ["worse", "tie"]
    assert rows[0]["gap"] == pytest.approx(-0.10)
    assert "| variant |" in (out / "report.md").read_text()
