"""A cost-conditioned policy (`reward.cost_lambda_range`): one bundle, a cost weight per request.

One tiny real training per module (sim pool, synthetic task, hashing embedder, latency off): the
design search at each grid λ, the clone of each λ's design, a few stage-1 steps, the export with
the measured cost grid. Then the same bundle must choose different designs for different cost
weights / budgets in one process — through `Policy`, the OpenAI client over HTTP and `hieramas
eval` — and every budget number must be validated with an error naming its field.
"""

from __future__ import annotations

import json
import math

import pytest

from hieramas_gnn.bundle import BUNDLE_VERSION
from hieramas_gnn.errors import ConfigError, UserError

KEY = "cost-key"
LOW, HIGH = 1.0, 100000.0


def _cfg(out, *extra):
    from hieramas_gnn.config import load_config

    return load_config(None, [
        "task.name=synthetic", "task.train_size=16", "task.val_size=8", "task.test_size=8",
        "pool.name=sim", "policy.embedder=hashing", "policy.hashing_dim=16", f"policy.embed_cache={out}/emb",
        "policy.arch={hidden: 16, layers: 1, heads: 2, proposer_slots: 2, allow_skip: true, decision_inputs: all}",
        "stage1.steps=2", "stage1.batch_size=4", "stage1.topologies=parallel", "stage1.val_every=2",
        "stage1.checkpoint_every=2", "stage1.warm_start=search", "stage1.warm_start_models=3",
        "stage1.warm_start_voters=2", "stage1.warm_start_steps=100", "reward.shape=exp", "reward.cost_lambda=100",
        "credit.baseline=moving_average", "backend.sim.latency='off'", "tracking.wandb=disabled",
        "tracking.progress=false", "tracking.designs_every=1000", f"run.out_dir={out}/run",
        f"cache.path={out}/cache.sqlite", *extra,
    ])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from hieramas_gnn.train.pipeline import train_pipeline

    out = tmp_path_factory.mktemp("cost")
    cfg = _cfg(out, f"reward.cost_lambda_range=[{LOW}, {HIGH}]", "reward.cost_lambda_grid=3")
    return train_pipeline(cfg), out


@pytest.fixture(scope="module")
def policy(trained):
    from hieramas_gnn import Policy

    result, out = trained
    return Policy.load(result.bundle, cache=str(out / "cache.sqlite"), backend={"sim": {"latency": "off"}})


@pytest.fixture(scope="module")
def url(policy):
    from hieramas_gnn.serve.app import ServeLimits, create_app
    from hieramas_gnn.serve.server import ServerThread

    server = ServerThread(create_app(policy, ServeLimits(api_key=KEY)), header_timeout_s=1.0)
    yield server.start()
    server.stop()


def _question(policy):
    """A validation question whose designs differ between the cheap and the dear end."""
    for q in policy.task.load(None, "test"):
        if policy.design(q.text, cost_lambda=LOW) != policy.design(q.text, cost_lambda=HIGH):
            return q
    raise AssertionError("no question whose design depends on the cost weight")


def test_the_search_gives_each_grid_point_its_own_design_and_the_bundle_records_them(trained):
    result, _ = trained
    grid = result.setup.cost_grid
    assert grid.lambdas == [LOW, pytest.approx(316.2, rel=1e-3), HIGH]
    assert len({p["design"] for p in grid.points}) > 1  # the planted range spans different designs
    costs = [p["cost_usd"] for p in grid.points]
    assert costs[0] > costs[-1] > 0  # measured at export: the accuracy end is the dear one
    meta = json.loads((result.bundle / "policy.json").read_text())
    assert meta["version"] == BUNDLE_VERSION and meta["cost"]["range"] == [LOW, HIGH] and len(meta["cost"]["points"]) == 3


def test_one_bundle_chooses_by_the_cost_weight_of_each_call(policy):
    q = _question(policy)
    dear, cheap = policy.solve(q.text, cost_lambda=LOW), policy.solve(q.text, cost_lambda=HIGH)
    assert dear.design != cheap.design and dear.cost_usd > cheap.cost_usd
    assert cheap.cost == {"cost_lambda": HIGH, "source": "cost_lambda", "expected_cost_usd": pytest.approx(
        policy.cost_grid.points[-1]["cost_usd"]), "fits": True}
    # out of the trained range: clamped to it, so the same design as at the range's end
    assert policy.design(q.text, cost_lambda=1e9) == policy.design(q.text, cost_lambda=HIGH)
    assert policy.design(q.text) == policy.design(q.text, cost_lambda=100.0)  # the default λ: reward.cost_lambda


def test_max_cost_usd_takes_the_most_accurate_point_that_fits(policy):
    grid = policy.cost_grid
    cheapest = min(grid.points, key=lambda p: p["cost_usd"])
    assert policy.cost_pick(max_cost_usd=cheapest["cost_usd"]).cost_lambda == cheapest["cost_lambda"]
    rich = policy.cost_pick(max_cost_usd=1.0)
    best = max(grid.points, key=lambda p: (p["accuracy"], -p["cost_usd"]))
    assert rich.cost_lambda == best["cost_lambda"] and rich.fits
    poor = policy.cost_pick(max_cost_usd=0.0)
    assert not poor.fits and poor.cost_lambda == cheapest["cost_lambda"]
    q = _question(policy)
    assert policy.design(q.text, max_cost_usd=1.0) == policy.design(q.text, cost_lambda=rich.cost_lambda)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, True, "abc", [1]])
@pytest.mark.parametrize("field", ["cost_lambda", "max_cost_usd"])
def test_bad_budget_numbers_are_refused_naming_the_field(policy, bad, field):
    with pytest.raises(UserError, match=field):
        policy.design("What is 2 + 2?", **{field: bad})


def test_limits_on_calls_and_rounds_combine_with_a_cost_weight(policy):
    q = _question(policy)
    for lam in (LOW, HIGH):
        limits = policy.request_limits(2, 2)
        design = policy.design(q.text, cost_lambda=lam, max_calls=2, max_rounds=2)
        assert limits.fits(design)
        free = policy.design(q.text, cost_lambda=lam)
        assert design == free or not limits.fits(free)
        sol = policy.solve(q.text, cost_lambda=lam, max_calls=2)
        assert sol.cost["cost_lambda"] == lam and sol.limits["calls"] <= 2 and len(sol.trace["calls"]) <= 2


def test_both_budgets_at_once_are_refused(policy):
    with pytest.raises(UserError, match="not both"):
        policy.design("What is 2 + 2?", cost_lambda=1.0, max_cost_usd=1e-3)


def test_served_requests_with_different_budgets_get_different_designs(url, policy):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    q = _question(policy)
    ask = [{"role": "user", "content": q.text}]
    dear = client.chat.completions.with_raw_response.create(model=policy.name, messages=ask,
                                                            extra_body={"cost_lambda": LOW})
    cheap = client.chat.completions.with_raw_response.create(model=policy.name, messages=ask,
                                                             extra_headers={"X-Hieramas-Cost-Lambda": str(HIGH)})
    capped = client.chat.completions.with_raw_response.create(
        model=policy.name, messages=ask, extra_body={"max_cost_usd": policy.cost_grid.points[-1]["cost_usd"]})
    d_dear, d_cheap, d_capped = (json.loads(r.headers["x-hieramas-design"]) for r in (dear, cheap, capped))
    assert d_dear != d_cheap and d_capped == d_cheap
    assert d_dear == policy.design(q.text, cost_lambda=LOW).to_dict()
    assert dear.headers["x-hieramas-cost-lambda"] == f"{LOW:g}"
    body = cheap.parse().model_extra["hieramas"]
    assert body["cost"]["cost_lambda"] == HIGH and body["cost_usd"] < dear.parse().model_extra["hieramas"]["cost_usd"]


def _post(url, body=None, headers=None, raw=None):
    import urllib.error
    import urllib.request

    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=data, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("how", [
    {"raw": b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "cost_lambda": NaN}'},
    {"body": {"cost_lambda": -3}}, {"body": {"max_cost_usd": "lots"}}, {"body": {"max_cost_usd": 1e400}},
    {"headers": {"X-Hieramas-Cost-Lambda": "inf"}}, {"headers": {"X-Hieramas-Max-Cost-Usd": "-0.1"}},
    {"body": {"cost_lambda": 1}, "headers": {"X-Hieramas-Cost-Lambda": "2"}},
])
def test_bad_budgets_over_http_get_a_400_naming_the_field(url, policy, how):
    raw = how.get("raw")
    if raw is not None:
        raw = raw.replace(b'"M"', json.dumps(policy.name).encode())
    body = {"model": policy.name, "messages": [{"role": "user", "content": "What is 2 + 2?"}], **how.get("body", {})}
    status, answer = _post(url, body, how.get("headers"), raw)
    assert status == 400, answer
    field = answer["error"]["param"]
    assert field in ("cost_lambda", "max_cost_usd") and field in answer["error"]["message"].replace("-", "_").lower()


def test_eval_gives_the_frontier_of_one_bundle_and_meets_a_target_cost(trained, tmp_path, capsys):
    from hieramas_gnn.cli import main

    result, out = trained
    common = ["eval", "--policy", str(result.bundle), "--cache", str(out / "cache.sqlite"), "--embed-cache",
              str(out / "emb")]
    assert main([*common, "--cost-lambda", str(LOW), str(HIGH), "--out", str(tmp_path / "front")]) == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "front" / "results.json").read_text())["results"]}
    assert set(rows) == {f"hieramas λ={LOW:g}", f"hieramas λ={HIGH:g}"}
    assert rows[f"hieramas λ={LOW:g}"]["cost_usd"] > rows[f"hieramas λ={HIGH:g}"]["cost_usd"]
    lo, hi = rows[f"hieramas λ={HIGH:g}"]["cost_usd"], rows[f"hieramas λ={LOW:g}"]["cost_usd"]
    target = (lo + hi) / 2
    assert main([*common, "--target-cost-per-query", f"{target:.6g}", "--out", str(tmp_path / "target")]) == 0
    row = json.loads((tmp_path / "target" / "results.json").read_text())["results"][0]
    assert row["target_feasible"] and row["planned_cost_usd"] <= target * (1 + 1e-6)
    assert lo < row["cost_usd"] < hi  # a mix: neither end alone
    assert "realised" in capsys.readouterr().err
    for flag, value in (("--cost-lambda", "nan"), ("--max-cost-usd", "-1"), ("--target-cost-per-query", "inf")):
        assert main([*common, flag, value]) == 2
        assert flag in capsys.readouterr().err


def test_eval_of_the_frontier_within_limits_reports_them_per_row(trained, tmp_path):
    from hieramas_gnn.cli import main

    result, out = trained
    assert main(["eval", "--policy", str(result.bundle), "--cache", str(out / "cache.sqlite"), "--embed-cache",
                 str(out / "emb"), "--cost-lambda", str(LOW), str(HIGH), "--max-calls", "2",
                 "--out", str(tmp_path / "limited")]) == 0
    data = json.loads((tmp_path / "limited" / "results.json").read_text())
    assert data["limits"] == {"max_calls": 2, "max_rounds": None} and len(data["results"]) == 2
    for row in data["results"]:
        assert row["limits"]["calls"] <= 2 and row["calls"] <= 2


def test_a_bundle_of_one_fixed_weight_refuses_a_cost_weight_and_old_bundles_load(tmp_path):
    from hieramas_gnn import Policy
    from hieramas_gnn.bundle import META, read_meta
    from hieramas_gnn.serve.testing import sim_bundle
    from tests.test_bundle_integrity import rewrite_checksums

    bundle = sim_bundle(tmp_path / "b")
    policy = Policy.load(bundle, cache=None)
    with pytest.raises(UserError, match="not cost-conditioned"):
        policy.design("What is 2 + 2?", cost_lambda=10)
    with pytest.raises(UserError, match="max_cost_usd: must be a finite"):
        policy.design("What is 2 + 2?", max_cost_usd=math.nan)
    meta = json.loads((bundle / META).read_text())
    meta["version"] = 6  # written before the cost grid existed
    meta.pop("cost")
    (bundle / META).write_text(json.dumps(meta))
    rewrite_checksums(bundle)
    assert read_meta(bundle).cost == {} and Policy.load(bundle, cache=None).cost_grid is None


def test_a_malformed_cost_grid_in_a_bundle_is_refused_naming_it(trained, tmp_path):
    import shutil

    from hieramas_gnn.bundle import META, read_meta
    from tests.test_bundle_integrity import rewrite_checksums

    bundle = tmp_path / "b"
    shutil.copytree(trained[0].bundle, bundle)
    meta = json.loads((bundle / META).read_text())
    meta["cost"]["points"][0]["cost_usd"] = -1
    (bundle / META).write_text(json.dumps(meta))
    rewrite_checksums(bundle)
    with pytest.raises(UserError, match=r"cost.*points\[0\]\.cost_usd"):
        read_meta(bundle)


@pytest.mark.parametrize("value", ["[0, 10]", "[10, 1]", "[1, .nan]", "[1, .inf]", "[5]", "[-1, 3]"])
def test_a_bad_cost_lambda_range_is_refused_naming_the_field(tmp_path, value):
    with pytest.raises(ConfigError, match="cost_lambda_range"):
        _cfg(tmp_path, f"reward.cost_lambda_range={value}")


def test_without_a_range_nothing_changes(tmp_path):
    """Unset range = one fixed λ exactly as before: no cost grid, the query features and the
    policy's input widths of a run without the field."""
    import torch

    from hieramas_gnn.build import build_policy, cost_features, cost_grid
    from hieramas_gnn.policy.features import FeatureBuilder, HashingEmbedder

    cfg = _cfg(tmp_path)
    assert cost_features(cfg) == {} and cost_grid(cfg, "m") is None
    plain = FeatureBuilder(HashingEmbedder(16), domain_vocab=["a"])
    x = plain.queries_features(["what is 2 + 2?"], [{"domain": "a"}])
    assert x.shape == (1, 16 + 2) and plain.dims.query == 18
    with pytest.raises(ValueError, match="not cost-conditioned"):
        plain.queries_features(["q"], [{}], [3.0])
    ranged = _cfg(tmp_path, "reward.cost_lambda_range=[1, 100]")
    cond = FeatureBuilder(HashingEmbedder(16), domain_vocab=["a"], **cost_features(ranged))
    y = cond.queries_features(["what is 2 + 2?"] * 3, [{"domain": "a"}] * 3, [1.0, 10.0, 1e6])
    assert cond.dims.query == 19 and torch.equal(y[:, :18], x.expand(3, -1))
    middle = (math.log1p(10) - math.log1p(1)) / (math.log1p(100) - math.log1p(1))
    assert y[:, -1].tolist() == pytest.approx([0.0, middle, 1.0])  # 1e6 is clamped to the range's end
    _, builder = build_policy(cfg, ["solver"], [("m", "a model", (1e-6, 1e-6))], [])
    assert not builder.cost_conditioned


def test_plan_target_cost_mixes_the_neighbouring_points_and_spends_where_it_is_free():
    from hieramas_gnn.policy.cost import plan_target_cost

    keys = ["q0", "q1", "q2", "q3"]
    plan = plan_target_cost([[3, 3, 3, 3], [1, 1, 1, 1]], [0.8, 0.5], 2.0, keys)  # λ ascending: dear first
    assert sorted(plan.assign) == [0, 0, 1, 1] and plan.planned_cost_usd == 2.0 and plan.feasible
    assert plan_target_cost([[3, 3, 3, 3], [1, 1, 1, 1]], [0.8, 0.5], 9.0, keys).assign == [0] * 4
    low = plan_target_cost([[3, 3, 3, 3], [1, 1, 1, 1]], [0.8, 0.5], 0.5, keys)
    assert low.assign == [1] * 4 and not low.feasible
    # query-dependent: q0 and q1 get the dear point's design at no extra cost, so they move first
    free = plan_target_cost([[1, 1, 5, 5], [1, 1, 1, 1]], [0.8, 0.5], 1.0, keys)
    assert free.assign == [0, 0, 1, 1] and free.planned_cost_usd == 1.0
    # a dearer point that is not more accurate is off the frontier: never bought
    assert plan_target_cost([[9, 9, 9, 9], [1, 1, 1, 1]], [0.5, 0.5], 9.0, keys).assign == [1] * 4



def test_a_query_blind_mix_is_not_a_slice_of_the_question_order():
    from hieramas_gnn.policy.cost import plan_target_cost

    keys = [f"task/{i}" for i in range(40)]  # file order: its slices may differ in difficulty
    plan = plan_target_cost([[3.0] * 40, [1.0] * 40], [0.8, 0.5], 2.0, keys)
    moved = {k for k, a in zip(keys, plan.assign) if a == 0}
    assert len(moved) == 20 and plan.planned_cost_usd == 2.0
    assert moved != set(keys[:20]) and moved != set(keys[20:])
    first, last = sum(k in moved for k in keys[:20]), sum(k in moved for k in keys[20:])
    assert 5 <= first <= 15 and 5 <= last <= 15  # both halves of the file are in the mix
    again = plan_target_cost([[3.0] * 40, [1.0] * 40], [0.8, 0.5], 2.0, keys[::-1])  # the same keys, any order
    assert {k for k, a in zip(keys[::-1], again.assign) if a == 0} == moved

def _scripted_trainer(tmp_path, grid):
    """A stage-1 trainer on a one-layer policy whose validation returns scripted rewards."""
    from types import SimpleNamespace

    import torch

    from hieramas_gnn.train.stage1 import Stage1Trainer

    cfg = _cfg(tmp_path, f"reward.cost_lambda_range=[{LOW}, {HIGH}]")
    setup = SimpleNamespace(policy=torch.nn.Linear(2, 1), builder=SimpleNamespace(role_names=["solver"]),
                            cost_grid=grid)
    return Stage1Trainer(cfg, setup, tracker=None)


@pytest.mark.parametrize("conditioned", [True, False])
def test_a_step_that_pays_at_one_cost_weight_and_costs_at_another_is_not_kept(tmp_path, conditioned):
    """Planted: the step-10 policy raises the mean validation reward over the grid by helping the
    cheap-λ end and hurting the dear one. A cost-conditioned run keeps the step-0 policy (the
    searched designs' clone) — one set of weights serves every λ — and later keeps a step that is
    better at one λ and no worse at any. Without a grid the mean alone decides, as always."""
    import torch

    from hieramas_gnn.policy.cost import CostGrid

    lambdas = [LOW, 316.2, HIGH]
    grid = CostGrid(LOW, HIGH, 100.0, [{"cost_lambda": lam, "decision": "m"} for lam in lambdas]) \
        if conditioned else None
    trainer = _scripted_trainer(tmp_path, grid)
    script = {0: [0.5, 0.5, 0.5], 10: [0.9, 0.6, 0.3], 20: [0.55, 0.5, 0.5], 30: [0.6, 0.6, 0.6]}

    def validate(of=trainer):
        per = script[of.step]
        return {"eval/val_reward": sum(per) / len(per),
                **({f"eval/val_reward@{lam:g}": r for lam, r in zip(lambdas, per)} if conditioned else {})}

    trainer.validate = validate
    kept = []
    for step in (0, 10, 20):
        trainer.step = step
        trainer._validate_and_keep()
        kept.append(trainer.best[1])
    best_pt = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    if conditioned:
        assert kept == [0, 0, 20] and best_pt["step"] == 20
        assert best_pt["best_per_lambda"] == [0.55, 0.5, 0.5]
        resumed = _scripted_trainer(tmp_path, grid)
        resumed.load(best_pt)  # a resumed run keeps comparing per grid λ
        resumed.validate, resumed.step = (lambda: validate(resumed)), 30
        resumed._validate_and_keep()
        assert resumed.best[1] == 30
    else:
        assert kept == [0, 10, 10] and best_pt["step"] == 10


def test_pool_add_checks_a_new_model_at_every_grid_weight(trained, tmp_path):
    import yaml

    from hieramas_gnn.bundle import read_meta
    from hieramas_gnn.llm.types import BackendSettings
    from hieramas_gnn.pool_add import add_models

    result, out = trained
    grid = [p["cost_lambda"] for p in read_meta(result.bundle).cost_grid().points]
    new = {"name": "sim-new", "litellm_model": "sim/sim-new", "input_cost_per_token": 1e-6,
           "output_cost_per_token": 1e-6, "profile": "a new model",
           "extra": {"litellm_params": {"sim_model": {"ability": {"default": 1.0}}}}}
    pool = tmp_path / "pool.yaml"
    pool.write_text(yaml.safe_dump({"name": "plus", "models": [new]}))
    res = add_models(result.bundle, pool, tmp_path / "plus", calibration_questions_n=4, cache_path=tmp_path / "c.sqlite",
                     backend=BackendSettings.from_dict({"sim": {"latency": "off"}}), embed_cache=f"{out}/emb")
    (check,) = res.checks
    assert check.cost_lambdas == grid and len(check.reward_with) == len(check.reward_without) == len(grid)
    assert check.kept == all(w >= o - 1e-12 for w, o in zip(check.reward_with, check.reward_without))
    assert ("sim-new" in read_meta(res.bundle).model_names) == check.kept
