"""`hieramas pool add`: new models for a trained bundle without retraining (`hieramas_gnn/pool_add.py`).

The bundle here is planted: a policy without message passing whose proposer and synthesizer
logits are 10 x the model's ability hint, so it chooses the model with the best hint, over a pool
of simulated models (`sim/` with inline abilities: a strong model answers almost everything right).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from hieramas_gnn.bundle import export_policy, read_embeddings, read_meta
from hieramas_gnn.cli import main
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import pool_from_dict
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.pool_add import BudgetStop, add_models

OFF = BackendSettings.from_dict({"sim": {"latency": "off"}})
DIM = 16


def _model(name: str, ability: float, price: float = 1e-6) -> dict:
    return {"name": name, "litellm_model": f"sim/{name}", "input_cost_per_token": price,
            "output_cost_per_token": price, "profile": f"model {name}",
            "extra": {"litellm_params": {"sim_model": {"ability": {"default": ability}}}}}


OLD = [_model("weak-a", -2.0), _model("weak-b", 0.0)]


def _pool_yaml(path: Path, models: list[dict]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"name": path.stem, "models": models}))
    return path


def _planted_policy(builder):
    from hieramas_gnn.policy.gnn import HieraPolicy
    from hieramas_gnn.policy.settings import ArchConfig

    h = 8
    policy = HieraPolicy(ArchConfig(hidden=h, layers=0, conv="gcn", k_proposers=1, allow_skip=False), builder.dims)
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.proj["llm"].weight[0, DIM + 4] = 1.0  # hidden unit 0 of an LLM node = its ability hint
        for head in (policy.mixture_head.proposer, policy.mixture_head.synthesizer):
            head[0].weight[0, h] = 1.0  # the pair's LLM part, unit 0
            head[3].weight[0, 0] = 10.0
    return policy


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.policy.choose import ChoiceSettings
    from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder, LLMNode
    from hieramas_gnn.policy.graph import GraphBuilder, RoleNode
    from hieramas_gnn.tasks import get_task

    tmp = tmp_path_factory.mktemp("pool_add")
    roles = get_roleset("synthetic").roles
    nodes = [LLMNode("weak-a", "model weak-a", 1e-6, 1e-6, (0.2,)), LLMNode("weak-b", "model weak-b", 1e-6, 1e-6, (0.5,))]
    builder = GraphBuilder(FeatureBuilder(CachedEmbedder(HashingEmbedder(DIM)), hint_dim=1),
                           [RoleNode(r.name, r.description) for r in roles], nodes)
    train_ids = [q.id for q in get_task("synthetic").load(None, split="test")[:12]]
    pool = pool_from_dict({"name": "old", "models": OLD}, where="test", default_name="old")
    return export_policy(_planted_policy(builder), tmp / "old", builder=builder, decision="weak-b", pool=pool,
                         choice=ChoiceSettings(route="random", decision="weak-b", topologies="parallel"),
                         family="synthetic", task="synthetic",
                         hyperparameters={"task": {"name": "synthetic", "split": "test"},
                                          "backend": {"sim": {"latency": "off"}}},
                         training={"split": {"train": train_ids, "val": [], "test": []}})


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _add(bundle: Path, tmp_path: Path, models: list[dict], **kw):
    pool = _pool_yaml(tmp_path / "new.yaml", models)
    kw.setdefault("cache_path", tmp_path / "cache.sqlite")
    return add_models(bundle, pool, tmp_path / "new", calibration_questions_n=kw.pop("n", 8), backend=OFF, **kw)


def _proposers(bundle: Path) -> set[str]:
    from hieramas_gnn.bundle import load_chooser

    chooser, _ = load_chooser(bundle)
    designs = chooser.designs(["What is 2 + 3?", "Which is larger, 7 or 9?"])
    return {m for d in designs for mix in d.mixtures if mix is not None for m in mix.proposers}


def test_a_strong_new_model_is_named_measured_and_chosen(bundle, tmp_path):
    before = _digests(bundle)
    res = _add(bundle, tmp_path, [*OLD, _model("strong", 8.0)])
    meta = read_meta(res.bundle)
    assert meta.model_names == ["weak-a", "weak-b", "strong"] and res.added == ["strong"]
    assert res.calibration[0].accuracy == 1.0 and meta.pool[2]["hints"] == [1.0]
    assert meta.pool[0]["hints"] == [0.2]  # the bundle's models keep their trained hints
    assert _proposers(bundle) == {"weak-b"} and _proposers(res.bundle) == {"strong"}
    assert _digests(bundle) == before  # the old bundle is byte-identical


def test_a_weak_new_model_is_measured_but_not_chosen(bundle, tmp_path):
    res = _add(bundle, tmp_path, [_model("feeble", -8.0)])  # the bundle's offline models come from its record
    assert read_meta(res.bundle).model_names == ["weak-a", "weak-b", "feeble"]
    assert res.calibration[0].accuracy < 0.2 and _proposers(res.bundle) == {"weak-b"}


def test_the_new_bundle_keeps_the_weights_and_records_what_was_recomputed(bundle, tmp_path):
    res = _add(bundle, tmp_path, [_model("strong", 8.0)], seed=3)
    old, new = read_meta(bundle), read_meta(res.bundle)
    assert (res.bundle / "policy.safetensors").read_bytes() == (bundle / "policy.safetensors").read_bytes()
    record = new.extra["pool_add"]
    assert record["added"] == ["strong"] and record["calibration_seed"] == 3
    assert {"llm_features", "ability_hints", "weights", "decision"} <= set(record["recomputed"])
    assert len(record["calibration_questions"]) == 8 and set(record["calibration_questions"]) <= set(old.training["split"]["train"])
    assert new.pool_models[2]["litellm_model"] == "sim/strong" and new.decision == old.decision
    stored = read_embeddings(res.bundle, new)  # the new model's profile embedded with the others
    assert stored.llm.shape[0] == 3 and "description_embeddings" in record["recomputed"]
    assert torch.equal(stored.llm, new.feature_builder().embed_texts(new.description_texts()[1]))
    assert torch.equal(stored.role, read_embeddings(bundle, old).role)


def test_a_killed_calibration_loses_no_paid_call_and_a_rerun_resumes(bundle, tmp_path):
    class Killed(BaseException):
        pass

    pool = pool_from_dict({"name": "p", "models": [*OLD, _model("strong", 8.0)]}, where="t", default_name="p")
    cache = tmp_path / "cache.sqlite"

    class DiesAfter:
        def __init__(self, inner, n):
            self.inner, self.n, self.stats = inner, n, inner.stats

        async def complete(self, request):
            if self.inner.stats.calls >= self.n:
                raise Killed()
            return await self.inner.complete(request)

    dying = DiesAfter(LLMClient(pool, RolloutCache(cache, "rw"), ClientConfig(budget_usd=1.0), backend=OFF), 5)
    with pytest.raises(Killed):
        _add(bundle, tmp_path, [_model("strong", 8.0)], client=dying, max_in_flight=1)
    assert not (tmp_path / "new").exists()
    paid_before = dying.inner.stats.calls
    assert paid_before == 5
    again = LLMClient(pool, RolloutCache(cache, "rw"), ClientConfig(budget_usd=1.0), backend=OFF)
    res = _add(bundle, tmp_path, [_model("strong", 8.0)], client=again, max_in_flight=1)
    assert again.stats.cache_hits == paid_before and again.stats.calls == 8 - paid_before
    assert res.calibration[0].questions == 8


def test_a_spent_budget_stops_before_writing(bundle, tmp_path):
    with pytest.raises(BudgetStop, match="raise --budget"):
        _add(bundle, tmp_path, [_model("strong", 8.0)], budget_usd=0.0)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("models, message", [
    ([*OLD], "adds no model"),
    ([{**_model("weak-a", 5.0), "litellm_model": "sim/other"}, _model("strong", 8.0)], "call another model"),
])
def test_a_pool_that_adds_nothing_or_renames_a_trained_model_is_refused(bundle, tmp_path, models, message):
    with pytest.raises(UserError, match=message):
        _add(bundle, tmp_path, models)


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), -1.0])
def test_a_non_finite_or_negative_budget_is_refused(bundle, tmp_path, budget):
    with pytest.raises(UserError, match="finite"):
        _add(bundle, tmp_path, [_model("strong", 8.0)], budget_usd=budget)


def test_the_new_bundle_never_goes_into_the_old_one_or_a_full_folder(bundle, tmp_path):
    pool = _pool_yaml(tmp_path / "new.yaml", [_model("strong", 8.0)])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for out in (bundle, bundle / "inner", tmp_path / "full"):
        with pytest.raises(UserError, match="--out"):
            add_models(bundle, pool, out, backend=OFF, cache_path=None)


def test_cli_pool_add_writes_the_bundle_and_reports_json(bundle, tmp_path, capsys):
    pool = _pool_yaml(tmp_path / "new.yaml", [_model("strong", 8.0)])
    code = main(["pool", "add", "--bundle", str(bundle), "--pool", str(pool), "--out", str(tmp_path / "b"),
                 "--calibration-questions", "4", "--cache", str(tmp_path / "c.sqlite"), "--sim-latency", "off", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == ["strong"] and out["calibration"][0]["questions"] == 4 and "llm_features" in out["recomputed"]


@pytest.mark.parametrize("args, message", [
    (["--bundle", "no/such/bundle"], "no such policy bundle"),
    (["--budget", "nan"], "finite"),
])
def test_cli_pool_add_bad_input_exits_2_naming_it(bundle, tmp_path, capsys, args, message):
    pool = _pool_yaml(tmp_path / "new.yaml", [_model("strong", 8.0)])
    base = {"--bundle": str(bundle), "--pool": str(pool), "--out": str(tmp_path / "b")}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["pool", "add", *[x for kv in base.items() for x in kv]]) == 2
    assert message in capsys.readouterr().err


def test_cli_pool_add_budget_stop_exits_3(bundle, tmp_path, capsys):
    pool = _pool_yaml(tmp_path / "new.yaml", [_model("strong", 8.0)])
    code = main(["pool", "add", "--bundle", str(bundle), "--pool", str(pool), "--out", str(tmp_path / "b"),
                 "--budget", "0", "--cache", str(tmp_path / "c.sqlite"), "--sim-latency", "off"])
    assert code == 3 and "raise --budget" in capsys.readouterr().err


@pytest.fixture(scope="module")
def priced_bundle(tmp_path_factory, bundle) -> Path:
    """The planted bundle, re-exported with a training reward that prices cost (linear, λ = 100)."""
    from hieramas_gnn.bundle import load_policy
    from hieramas_gnn.policy.choose import ChoiceSettings

    meta = read_meta(bundle)
    policy, _ = load_policy(bundle)
    tmp = tmp_path_factory.mktemp("pool_add_priced")
    pool = pool_from_dict({"name": "old", "models": OLD}, where="test", default_name="old")
    return export_policy(policy, tmp / "old", builder=meta.graph_builder(), decision="weak-b", pool=pool,
                         choice=ChoiceSettings.from_dict(meta.choice), family="synthetic", task="synthetic",
                         hyperparameters={**meta.hyperparameters, "reward": {"shape": "linear", "cost_lambda": 100.0}},
                         training=meta.training)


def test_a_new_model_that_lowers_the_bundle_reward_on_the_calibration_questions_is_held_back(priced_bundle, tmp_path):
    # strong and cheap: the designs with it score more reward -> kept; strong and dear: the head
    # still ranks it first (best hint), but at λ = 100 its calls cost more than its answers gain
    res = _add(priced_bundle, tmp_path, [_model("strong", 8.0), _model("strong-dear", 8.0, price=1e-4)],
               budget_usd=20.0)
    checks = {c.model: c for c in res.checks}
    assert checks["strong"].kept and checks["strong"].used == 1.0
    assert checks["strong"].reward_with[0] > checks["strong"].reward_without[0]
    dear = checks["strong-dear"]
    assert not dear.kept and dear.used == 1.0 and dear.reward_with[0] < dear.reward_without[0]
    assert res.held_back == ["strong-dear"] and res.added == ["strong"]
    meta = read_meta(res.bundle)
    assert meta.model_names == ["weak-a", "weak-b", "strong"]
    assert meta.extra["pool_add"]["held_back"] == ["strong-dear"] and len(meta.extra["pool_add"]["checks"]) == 2
    assert any("strong-dear held back" in n for n in res.notes)
    # the same without the check: both go in
    unchecked = add_models(priced_bundle, tmp_path / "new.yaml", tmp_path / "unchecked", calibration_questions_n=8,
                           backend=OFF, cache_path=tmp_path / "cache.sqlite", budget_usd=20.0, check=False)
    assert unchecked.checks == [] and read_meta(unchecked.bundle).model_names == ["weak-a", "weak-b", "strong", "strong-dear"]


def test_a_bundle_without_a_recorded_reward_is_not_checked_and_says_so(bundle, tmp_path):
    res = _add(bundle, tmp_path, [_model("strong", 8.0)])
    assert res.checks == [] and any("not checked" in n for n in res.notes)
