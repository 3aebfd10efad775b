"""The per-cluster warm start (`stage1.warm_start: search_per_cluster`, `train/cluster_search.py`)
and the query-blind switch (`policy.query_features: false`).

The planted world: synthetic questions (six domains), three models. `spec` is cheap and right on
logic questions only, `cheap` is as cheap and right on every other domain, `big` is right
everywhere at 30x the price. The best design per domain is obvious (logic: `spec`, the rest:
`cheap`), and no single design is right everywhere short of paying for `big`: a constant design
leaves logic (or the money) on the table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from hieramas_gnn.config import load_config
from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.testing import FakeClient
from hieramas_gnn.tasks import get_task
from hieramas_gnn.train import cluster_search
from hieramas_gnn.train.pipeline import resolve_decision, train_pipeline
from hieramas_gnn.build import build_training

PRICE = {"cheap": 2e-6, "spec": 2e-6, "big": 6e-5}  # USD per token
POOL = "\n".join(["name: planted-specialist", "models:"] + [
    f"  - {{name: {m}, litellm_model: sim/{m}, input_cost_per_token: {p:.1e}, output_cost_per_token: {p:.1e}, "
    f"profile: model {m}}}" for m, p in PRICE.items()])
SPECIALIST_DOMAIN = "logic"


class PlantedClient(FakeClient):
    """Right or wrong by (model, domain) as the module docstring says; priced per model."""

    async def complete(self, request):
        record = await super().complete(request)
        return replace(record, cost_usd=PRICE[request.model] * (record.prompt_tokens + record.completion_tokens))


def _right(model: str, domain: str) -> bool:
    return model == "big" or (model == "spec") == (domain == SPECIALIST_DOMAIN)


def _reply(request):
    task = get_task("synthetic")
    q = task.get(request.metadata["question_id"])
    if _right(request.model, q.meta["domain"]):
        return task.render_answer(q.gold, q)
    wrong = "A" if q.gold != "A" else "B"
    if q.meta.get("answer_kind") != "choice":
        wrong = str(int(float(q.gold)) + 1) if str(q.gold).lstrip("-").isdigit() else "12345"
    return task.render_answer(wrong, q)


def _cfg(tmp_path, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pool.yaml").write_text(POOL)
    return load_config(None, [
        f"pool.name={tmp_path / 'pool.yaml'}", "task.name=synthetic", "task.train_size=48", "task.val_size=12",
        "task.test_size=24", "roles.family=synthetic", "roles.names=[solver, verifier]",
        "policy.embedder=hashing", "policy.hashing_dim=32", f"policy.embed_cache={tmp_path / 'emb'}",
        "policy.arch={hidden: 16, layers: 1, heads: 2, proposer_slots: 1, allow_skip: true, decision_inputs: all}",
        "stage1.steps=4", "stage1.batch_size=8", "stage1.lr=0.01", "stage1.topologies=parallel",
        "stage1.val_every=4", "stage1.checkpoint_every=4", "stage1.warm_start=search_per_cluster",
        "stage1.warm_start_clusters=[4, 6]", "stage1.warm_start_min_cluster=4", "stage1.warm_start_voters=2",
        "stage1.warm_start_bc=1.0", "reward.cost_lambda=300", "reward.alpha=0", "credit.baseline=moving_average",
        "topology.method=classifier", "tracking.wandb=disabled", "tracking.progress=false",
        "tracking.designs_every=1000", f"run.out_dir={tmp_path / 'run'}", f"cache.path={tmp_path / 'cache.sqlite'}",
        "cache.mode=rw", *extra,
    ])


def _proposers(design) -> set[str]:
    return {m for mix in design.mixtures if mix is not None for m in mix.proposers}


def test_the_exported_policy_routes_the_planted_specialists_domain_to_it(tmp_path):
    """Search per domain, clone per query, REINFORCE on top, export; the bundle, loaded as a user
    loads it, sends every held-out logic question to `spec` alone and no other question to it."""
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.build import load_questions

    cfg = _cfg(tmp_path)
    result = train_pipeline(cfg, client=PlantedClient(reply=_reply))
    found = json.loads((tmp_path / "run" / "cluster_search.json").read_text())
    assert found["partition"]["name"] == "domain"
    by_cluster = dict(zip(found["partition"]["labels"], found["summaries"]))
    assert by_cluster[SPECIALIST_DOMAIN] == "single spec"
    assert all(s == "single cheap" for d, s in by_cluster.items() if d != SPECIALIST_DOMAIN)
    chooser, _ = load_chooser(result.bundle, embed_cache=tmp_path / "emb")
    _, _, test, _ = load_questions(cfg)
    for q, design in zip(test, chooser.designs(test)):
        if q.meta["domain"] == SPECIALIST_DOMAIN:
            assert design.summary() == "single spec", q.id
        else:
            assert "spec" not in _proposers(design), (q.id, design.summary())


def test_without_domain_labels_the_query_embedding_clusters_find_the_specialist(tmp_path):
    """No label used (`warm_start_by_domain: false`): k-means on the query embedding, its count
    chosen on held-out folds; the lookup sends the held-out logic questions to `spec`."""
    from hieramas_gnn.build import load_questions

    cfg = _cfg(tmp_path, "stage1.warm_start_by_domain=false", "policy.query_domains=false")
    setup = build_training(cfg, client=PlantedClient(reply=_reply))
    resolve_decision(cfg, setup)
    found = cluster_search.ClusterDesigns.load(tmp_path / "run" / cluster_search.FILE)
    assert found.partition.name.startswith("kmeans-") and found.per_query
    assert [t["partition"] for t in found.tried] == ["all", "kmeans-4", "kmeans-6"]
    _, _, test, _ = load_questions(cfg)
    embed = cluster_search.embedder_fn(setup.builder.features.embedder)
    routed = {q.id: d.summary() for q, d in zip(test, found.designs_for(test, embed))}
    logic = [q.id for q in test if q.meta["domain"] == SPECIALIST_DOMAIN]
    assert logic and all(routed[i] == "single spec" for i in logic)
    assert setup.warm_targets(test) == found.designs_for(test, embed)


def test_where_no_cluster_pays_the_search_keeps_the_one_global_design(tmp_path):
    """`cheap` right everywhere: every partition ties the global design on held-out folds, so the
    result is one cluster and the warm start equals `search`."""
    task = get_task("synthetic")

    def reply(request):
        q = task.get(request.metadata["question_id"])
        right = request.model in ("cheap", "big")
        return task.render_answer(q.gold if right else ("A" if q.gold != "A" else "B"), q)

    cfg = _cfg(tmp_path)
    setup = build_training(cfg, client=PlantedClient(reply=reply))
    resolve_decision(cfg, setup)
    found = cluster_search.ClusterDesigns.load(tmp_path / "run" / cluster_search.FILE)
    assert found.partition.name == "all" and not found.per_query
    assert found.designs == [setup.warm_design] and found.designs[0].summary() == "single cheap"
    assert setup.warm_targets(setup.train) == [setup.warm_design] * len(setup.train)


def test_a_resumed_run_reads_the_cluster_search_and_pays_nothing(tmp_path):
    cfg = _cfg(tmp_path)
    setup = build_training(cfg, client=PlantedClient(reply=_reply))
    resolve_decision(cfg, setup)

    class Unpaid(PlantedClient):
        async def complete(self, request):
            raise AssertionError("the search ran again")

    again = build_training(cfg, client=Unpaid(reply=_reply))
    resolve_decision(cfg, again)
    assert again.warm_targets(again.train) == setup.warm_targets(setup.train)


def test_a_question_of_a_domain_the_search_never_saw_gets_the_global_design():
    from hieramas_gnn.mas.design import Design, Mixture
    from hieramas_gnn.tasks.base import Question

    one = Design(("solver",), (Mixture(("a",), "a"),), (), "a", "all")
    other = Design(("solver",), (Mixture(("b",), "b"),), (), "a", "all")
    lookup = cluster_search.ClusterDesigns(cluster_search.Partition("domain", ["x", "y"]), [one, other], fallback=one)
    qs = [Question(id=f"q{d}", task="t", text="?", gold="A", meta={"domain": d}) for d in ("y", "z")]
    assert lookup.designs_for(qs) == [other, one]


def test_query_blind_policy_sees_the_same_features_for_every_query_and_the_bundle_says_so(tmp_path):
    import torch

    from hieramas_gnn.bundle import export_policy, read_meta

    cfg = _cfg(tmp_path, "policy.query_features=false", "stage1.warm_start=none")
    setup = build_training(cfg, client=PlantedClient(reply=_reply))
    fb = setup.builder.features
    x = fb.queries_features([q.text for q in setup.train[:3]], [q.meta for q in setup.train[:3]])
    assert x.shape == (3, fb.dims.query) and not torch.any(x)
    bundle = export_policy(setup.policy, tmp_path / "bundle", builder=setup.builder, decision="cheap", pool_name="p")
    meta = read_meta(bundle)
    assert meta.query_features is False and meta.feature_builder().sees_query is False
    seen = build_training(_cfg(tmp_path / "seen", "stage1.warm_start=none"), client=PlantedClient(reply=_reply))
    assert torch.any(seen.builder.features.queries_features([setup.train[0].text], [setup.train[0].meta]))


@pytest.mark.parametrize("override, field", [("stage1.warm_start_clusters=[1]", "warm_start_clusters"),
                                             ("stage1.warm_start_folds=1", "warm_start_folds"),
                                             ("stage1.warm_start_min_cluster=0", "warm_start_min_cluster"),
                                             ("stage1.warm_start_design_z=-1", "warm_start_design_z")])
def test_bad_cluster_settings_name_the_field(tmp_path, override, field):
    with pytest.raises(UserError, match=field):
        _cfg(tmp_path, override)


def test_the_query_blind_ablation_of_the_same_pipeline_cannot_route_the_specialist(tmp_path):
    """`policy.query_features: false`: the same per-cluster targets, but a policy that cannot see
    the query chooses one design for every query, so no logic question reaches `spec` alone."""
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.build import load_questions

    cfg = _cfg(tmp_path, "policy.query_features=false", "stage1.warm_start_steps=30")  # it cannot match them all
    result = train_pipeline(cfg, client=PlantedClient(reply=_reply))
    chooser, meta = load_chooser(result.bundle, embed_cache=tmp_path / "emb")
    _, _, test, _ = load_questions(cfg)
    designs = chooser.designs(test)
    assert meta.query_features is False and len(set(designs)) == 1
    assert designs[0].summary() != "single spec"


def test_the_domain_table_flags_a_domain_only_where_the_policy_is_worse_and_dearer():
    """The demo bar, per domain: paired against the most accurate single model of the domain."""
    import numpy as np

    from hieramas_gnn.eval.experiment import domain_markdown, domain_table
    from hieramas_gnn.tasks.base import Question

    qs = [Question(id=f"q{i}", task="t", text="?", gold="A", meta={"domain": "ab"[i % 2]}) for i in range(40)]
    a = np.arange(40) % 2 == 0
    vec = lambda correct, cost: {"correct": np.asarray(correct, float), "cost": np.full(40, cost)}  # noqa: E731
    per_query = {"single:spec": vec(a, 1.0),                      # right on every `a`, wrong on every `b`
                 "single:gen": vec(np.ones(40) * (np.arange(40) % 4 < 2), 2.0),  # half of each
                 "hieramas": vec(~a, 3.0)}                         # wrong on every `a`, right on every `b`
    table = {r["domain"]: r for r in domain_table(per_query, qs)}
    assert table["a"]["best_single"] == "single:spec" and table["a"]["fails"]  # 0 vs 1.0 and dearer
    assert table["b"]["best_single"] == "single:gen" and not table["b"]["fails"]  # more accurate there
    per_query["hieramas"] = vec(~a, 0.5)
    assert not any(r["fails"] for r in domain_table(per_query, qs))  # worse on `a`, but cheaper
    assert "| a | 20 | spec 1.000" in domain_markdown(domain_table(per_query, qs))
    assert domain_table(per_query, [replace(q, meta={}) for q in qs]) == []  # one domain: no table


def test_a_partition_must_clear_the_margin_over_one_cluster(tmp_path):
    """The planted domain partition beats one cluster by many standard errors; demanding more
    than its gap (`warm_start_cluster_z`) leaves one cluster, and the table says why."""
    cfg = _cfg(tmp_path, "stage1.warm_start_cluster_z=1000")
    setup = build_training(cfg, client=PlantedClient(reply=_reply))
    resolve_decision(cfg, setup)
    found = cluster_search.ClusterDesigns.load(tmp_path / "run" / cluster_search.FILE)
    assert found.partition.name == "all" and not found.per_query
    domain = next(t for t in found.tried if t["partition"] == "domain")
    assert domain["gap_over_all"] > 2 * domain["se"] and not domain["clears"]


def test_weighted_outcomes_choose_on_the_mean_over_components():
    """The per-cluster search's means take the search's question weights: on a cluster of 8 `a`
    questions and 2 `b` ones, design A (right on every `a`) beats B (right on 4 `a` and both `b`)
    per question (0.8 vs 0.6) and loses per component (0.5 vs 0.75)."""
    import numpy as np

    from hieramas_gnn.stats import task_mean_weights
    from hieramas_gnn.tasks.base import Question

    comps = ["a"] * 8 + ["b"] * 2
    qs = [Question(id=f"q{i}", task="t", text="?", gold="A", meta={"component": c}) for i, c in enumerate(comps)]
    right = {"A": [c == "a" for c in comps], "B": [i < 4 or c == "b" for i, c in enumerate(comps)]}

    class Runner:
        def run(self, pairs):
            return [SimpleNamespace(correct=right[d][int(q.id[1:])], failed=False, cost_usd=0.0) for d, q in pairs]

    where = np.arange(len(qs))
    picks = {}
    for name, weights in (("question", None), ("component", task_mean_weights(comps))):
        out = cluster_search.Outcomes(Runner(), qs, lambda t: float(t.correct), weights)
        rows = out.run(["A", "B"], where)
        picks[name] = out.best(rows, where, {0: "A", 1: "B"})
        assert out.single_rows(rows, where)[1]["accuracy"] == pytest.approx(0.6 if weights is None else 0.75)
    assert picks == {"question": 0, "component": 1}


def test_a_cluster_keeps_the_global_design_unless_its_best_beats_it_by_the_margin():
    """`warm_start_design_z`: on 20 questions the best candidate A gains one question over the
    global design G (0.55 vs 0.50, a paired SE of 0.05): kept at z = 0, not at z = 2; a gain of
    ten questions (1.0 vs 0.5: every difference in A's favour) clears any margin."""
    import numpy as np

    from hieramas_gnn.tasks.base import Question

    qs = [Question(id=f"q{i}", task="t", text="?", gold="A", meta={}) for i in range(20)]
    right = {"G": [i % 2 == 0 for i in range(20)], "A": [i % 2 == 0 or i == 1 for i in range(20)],
             "B": [True] * 20}

    class Runner:
        def run(self, pairs):
            return [SimpleNamespace(correct=right[d][int(q.id[1:])], failed=False, cost_usd=0.0) for d, q in pairs]

    out = cluster_search.Outcomes(Runner(), qs, lambda t: float(t.correct))
    where = np.arange(20)
    g, a, b = out.run(["G", "A", "B"], where)
    names = {g: "G", a: "A", b: "B"}
    assert out.pick([g, a], where, names, g, 0.0) == a
    assert out.pick([g, a], where, names, g, 2.0) == g
    assert out.pick([g, a, b], where, names, g, 2.0) == b
