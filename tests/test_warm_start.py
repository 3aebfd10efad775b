"""Stage 0 (`stage1.warm_start: search`): the simple-design search and the behaviour clone.

The planted world of `test_design_space_planted.py`: `x` is right only in the `solver` role
(cheap), `big` always right (30x the price), `weak` always wrong and the decision model. The best
simple design is "solver = x alone"; seed 0 does not find it by REINFORCE alone at this budget.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace

import pytest

from hieramas_gnn.config import load_config
from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.tracking import Tracker
from hieramas_gnn.train import warm_start
from hieramas_gnn.train.pipeline import resolve_decision
from hieramas_gnn.train.rewards import reward_function
from hieramas_gnn.build import build_training
from hieramas_gnn.train.stage1 import train_stage1
from hieramas_gnn.mas.testing import FakeClient
from hieramas_gnn.tasks import get_task
from tests.test_design_space_planted import POOL, SINGLE_X, PricedClient, _designs, _reply

ROLES = ("solver", "verifier", "generalist")


def _cfg(tmp_path, *extra, seed=0, arch="proposer_slots: 2, allow_skip: true, decision_inputs: all"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "planted.yaml").write_text(POOL)
    return load_config(None, [
        f"pool.name={tmp_path / 'planted.yaml'}", "pool.decision=weak", "task.name=synthetic",
        "task.train_size=16", "task.val_size=8", "task.test_size=0", "roles.family=synthetic",
        "roles.names=[solver, verifier, generalist]", "policy.embedder=hashing", "policy.hashing_dim=16",
        f"policy.embed_cache={tmp_path / 'emb'}", f"policy.arch={{hidden: 16, layers: 1, heads: 2, {arch}}}",
        "stage1.steps=30", "stage1.batch_size=8", "stage1.lr=0.02", "stage1.topologies=parallel",
        "stage1.val_every=10", "stage1.checkpoint_every=10", "stage1.entropy_beta=0.0",
        "stage1.warm_start=search", "reward.cost_lambda=500", "reward.alpha=0", "credit.baseline=moving_average",
        "tracking.wandb=disabled", "tracking.progress=false", "tracking.designs_every=1000",
        f"run.out_dir={tmp_path / 'run'}", f"cache.path={tmp_path / 'cache.sqlite'}", "cache.mode='off'",
        f"run.seed={seed}", *extra,
    ])


def _trained(cfg, client):
    """A set-up whose decision is resolved (stage 0 included) and whose stage 1 has run."""
    setup = build_training(cfg, client=client)
    setup.decision = resolve_decision(cfg, setup)
    with Tracker(cfg) as tracker:
        train_stage1(cfg, setup, tracker)
    return setup


def _greedy(setup):
    chooser = DesignChooser(setup.policy, setup.builder, ChoiceSettings(route="random", decision=setup.decision, n_candidates=2))
    return _designs([chooser.mixtures_on(q, [()])[0] for q in setup.val])


def test_the_search_finds_the_cheap_right_single_model(tmp_path):
    cfg = _cfg(tmp_path)
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, "weak")
    assert found.design.mixtures == SINGLE_X
    assert found.decision == "weak"
    best = found.rows[0]
    assert best["design"] == "single x" and best["accuracy"] == 1.0
    big = next(r for r in found.rows if r["design"] == "single big")
    assert big["accuracy"] == 1.0 and big["reward"] < best["reward"]  # right too, but 30x dearer


def test_without_a_fixed_decision_the_search_picks_it_with_the_design(tmp_path):
    cfg = _cfg(tmp_path)
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, None)
    assert found.design.mixtures == SINGLE_X and found.decision == "x"  # a single model decides for itself
    assert {r["decision"] for r in found.rows} >= {"big", "x"}  # the most accurate and the best-reward single


def test_a_warm_started_stage1_chooses_the_searched_design_where_reinforce_alone_did_not(tmp_path):
    cfg = _cfg(tmp_path)  # seed 0: REINFORCE alone settles on `big` (test_design_space_planted.py)
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    setup.decision = resolve_decision(cfg, setup)
    assert setup.warm_design.mixtures == SINGLE_X
    assert _greedy(setup) != [SINGLE_X] * len(setup.val)
    with Tracker(cfg) as tracker:
        result = train_stage1(cfg, setup, tracker)
    assert result.history[0]["warm_start/match"] >= warm_start.CLONE_MATCH
    assert _greedy(setup) == [SINGLE_X] * len(setup.val)
    decision = json.loads((tmp_path / "run" / "decision.json").read_text())
    assert decision["decision"] == "weak" and decision["design"] == "single x"


def test_the_bc_term_keeps_the_searched_design_through_training(tmp_path):
    setup = _trained(_cfg(tmp_path, "stage1.warm_start_bc=1.0", "stage1.steps=20"), PricedClient(reply=_reply))
    state = __import__("torch").load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    setup.policy.load_state_dict(state["policy"])  # the last weights, not the best-validation ones
    assert _greedy(setup) == [SINGLE_X] * len(setup.val)


def test_a_resumed_run_reuses_the_search_and_never_clones_twice(tmp_path):
    cfg = _cfg(tmp_path, "stage1.steps=10")
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    setup.decision = resolve_decision(cfg, setup)
    with Tracker(cfg) as tracker:
        train_stage1(cfg, setup, tracker)

    class Unpaid(PricedClient):
        async def complete(self, request):
            raise AssertionError("the search ran again")

    cfg2 = _cfg(tmp_path, "stage1.steps=10")
    again = build_training(cfg2, client=Unpaid(reply=_reply))
    again.decision = resolve_decision(cfg2, again)  # reads design_search.json: no call
    assert again.warm_design == setup.warm_design
    with Tracker(cfg2) as tracker:
        result = train_stage1(cfg2, again, tracker)  # at its last step: nothing to do
    assert not any("warm_start/steps" in h for h in result.history)


def test_designs_the_policy_cannot_express_are_not_candidates(tmp_path):
    cfg = _cfg(tmp_path, arch="k_proposers: 2, allow_skip: false, decision_inputs: all")
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, "weak")
    assert all(m is not None and m.k == 2 for m in found.design.mixtures)  # no skipping, exactly 2 proposers
    assert not any(r["design"].startswith(("single", "vote")) for r in found.rows)


def test_expressible_tells_a_skipped_role_from_an_allowed_one(tmp_path):
    cfg = _cfg(tmp_path, arch="k_proposers: 1, allow_skip: false, decision_inputs: all")
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    q = setup.train[0]
    lone = Design(ROLES, (Mixture(("x",), "x"), None, None), (), "weak", "all")
    full = Design(ROLES, tuple(Mixture(("x",), "x") for _ in ROLES), (), "weak", "all")
    assert warm_start.expressible(setup.policy, setup.builder, q, [lone, full]) == [False, True]


@pytest.mark.parametrize("on, split", [("train_val", ("train", "val")), ("train", ("train",))])
def test_the_search_ranks_designs_on_the_questions_warm_start_on_names(tmp_path, on, split):
    """Default train + val: the questions the fitted baselines (best single, router, cascade) and
    the decision model are chosen on; `train`: the training split alone. Never a test question."""
    cfg = _cfg(tmp_path, f"stage1.warm_start_on={on}")
    client = PricedClient(reply=_reply)
    setup = build_training(cfg, client=client)
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, "weak")
    want = {q.id for part in split for q in getattr(setup, part)}
    assert {r.metadata["question_id"] for r in client.requests} == want
    assert found.queries == f"{'train + val' if on == 'train_val' else 'train'} ({len(want)})"
    assert found.to_dict()["queries"] == found.queries


def test_the_search_picks_what_wins_on_its_own_questions(tmp_path):
    """Planted so that the training questions alone favour one model and train + val another
    (accuracy reward): `big` right on every training question and no validation one, `x` right
    on 10 of the 16 training questions and every validation one (train: big 1.0 > x 0.625;
    train + val: x 0.75 > big 0.667). The pick follows `warm_start_on`."""
    probe = build_training(_cfg(tmp_path / "probe"), client=PricedClient(reply=_reply))
    val = {q.id for q in probe.val}
    x_right = val | {q.id for q in probe.train[:10]}
    task = get_task("synthetic")

    def reply(request):
        q = task.get(request.metadata["question_id"])
        right = (q.id in x_right) if request.model == "x" else (request.model == "big" and q.id not in val)
        wrong = "A" if q.gold != "A" else "B"
        if q.meta.get("answer_kind") != "choice":
            wrong = str(int(float(q.gold)) + 1) if str(q.gold).lstrip("-").isdigit() else "12345"
        return task.render_answer(q.gold if right else wrong, q)

    picks = {}
    for on in ("train", "train_val"):
        c = _cfg(tmp_path / on, "reward.shape=linear", "reward.cost_lambda=0", f"stage1.warm_start_on={on}")
        setup = build_training(c, client=PricedClient(reply=reply))
        assert {q.id for q in setup.val} == val  # the same seeded split in every folder
        picks[on] = warm_start.search(c, setup, reward_function(c.reward).of_trace, "weak").rows[0]
    assert (picks["train"]["design"], picks["train"]["accuracy"]) == ("single big", 1.0)
    assert (picks["train_val"]["design"], picks["train_val"]["accuracy"]) == ("single x", 0.75)


@pytest.mark.parametrize("override, field", [("stage1.warm_start=always", "warm_start"),
                                             ("stage1.warm_start_on=test", "warm_start_on"),
                                             ("stage1.warm_start_voters=0", "warm_start_voters"),
                                             ("stage1.warm_start_bc=-1", "warm_start_bc"),
                                             ("stage1.warm_start_weighting=task", "warm_start_weighting")])
def test_bad_warm_start_settings_name_the_field(tmp_path, override, field):
    with pytest.raises(UserError, match=field):
        _cfg(tmp_path, override)


def test_accuracy_hints_are_each_models_training_accuracy_and_reach_the_bundle(tmp_path):
    from hieramas_gnn.bundle import export_policy, load_policy

    cfg = _cfg(tmp_path, "policy.accuracy_hints=true", "stage1.warm_start=none")
    setup = build_training(cfg, client=PricedClient(reply=_reply))
    hints = {m.name: m.hints for m in setup.builder.models}
    assert hints["big"][0] == 1.0 and hints["x"][0] == 1.0 and hints["weak"][0] == 0.0  # x alone: the single call
    assert all(len(h) == setup.builder.features.hint_dim for h in hints.values()) and len(hints["x"]) >= 1
    bundle = export_policy(setup.policy, tmp_path / "bundle", builder=setup.builder, decision="weak", pool_name="p")
    _policy, meta = load_policy(bundle)
    assert {m["name"]: tuple(m["hints"]) for m in meta.pool} == hints


def test_accuracy_hints_change_the_llm_features(tmp_path):
    on = build_training(_cfg(tmp_path / "a", "policy.accuracy_hints=true"), client=PricedClient(reply=_reply))
    off = build_training(_cfg(tmp_path / "b"), client=PricedClient(reply=_reply))
    assert on.policy.cfg == off.policy.cfg
    assert on.builder.dims.llm == off.builder.dims.llm + on.builder.features.hint_dim > off.builder.dims.llm


# ---------------------------------------------------------------- plurality votes in the family

THIRDS = {"x1": 2e-6, "x2": 2e-6, "x3": 2e-6, "big": 6e-5, "weak": 2e-6}
THIRDS_POOL = "\n".join(["name: thirds", "models:"] + [
    f"  - {{name: {m}, litellm_model: sim/{m}, input_cost_per_token: {p:.1e}, output_cost_per_token: {p:.1e}, "
    f"profile: model {m}}}" for m, p in THIRDS.items()])


class ThirdsClient(PricedClient):
    async def complete(self, request):
        record = await FakeClient.complete(self, request)
        return replace(record, cost_usd=THIRDS[request.model] * (record.prompt_tokens + record.completion_tokens))


def _thirds_reply(request):
    """x1, x2, x3 are each wrong on a different third of the questions, in every role: any two of
    them outvote the third, so only their plurality vote is always right without `big`."""
    task = get_task("synthetic")
    q = task.get(request.metadata["question_id"])
    wrong_third = zlib.crc32(q.id.encode()) % 3
    right = request.model == "big" or (request.model.startswith("x") and int(request.model[1]) - 1 != wrong_third)
    if right:
        return task.render_answer(q.gold, q)
    wrong = "A" if q.gold != "A" else "B"
    if q.meta.get("answer_kind") != "choice":
        wrong = str(int(float(q.gold)) + 1) if str(q.gold).lstrip("-").isdigit() else "12345"
    return task.render_answer(wrong, q)


def _thirds_cfg(tmp_path, *extra, arch="proposer_slots: 3, allow_skip: true, decision_inputs: all, plurality: true"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "thirds.yaml").write_text(THIRDS_POOL)
    return _cfg(tmp_path, f"pool.name={tmp_path / 'thirds.yaml'}", *extra, arch=arch)


def test_the_search_finds_a_plurality_vote_when_it_beats_every_single_model_and_escalation(tmp_path):
    cfg = _thirds_cfg(tmp_path)
    setup = build_training(cfg, client=ThirdsClient(reply=_thirds_reply))
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, "weak")
    assert found.design.summary().startswith("plurality vote of 3 [")
    assert sorted(found.design.mixtures[0].proposers) == ["x1", "x2", "x3"]
    best = found.rows[0]
    assert best["accuracy"] == 1.0
    escalated = [r for r in found.rows if r["design"].startswith("vote of 3 [x")]
    assert escalated and all(r["accuracy"] < 1.0 for r in escalated)  # the decision `weak` is wrong
    singles = {r["design"]: r["cost_usd"] for r in found.rows if r["design"].startswith("single x")}
    # asked until settled: the third model only where the two asked first disagree (about 2/3 of
    # the questions here), never less than two calls
    assert 2 / 3 * sum(singles.values()) <= best["cost_usd"] < sum(singles.values())


def test_each_plurality_vote_comes_in_its_accuracy_order_and_its_cheap_first_order():
    roles = ["solver", "verifier"]
    designs = warm_start.family(roles, [0], ["a", "b", "c"], ["a"], "all", 0, 3, [], plurality_sizes=[3],
                                by_accuracy=["b", "a", "c"], by_cost=["c", "a", "b"])
    assert [d.mixtures[0].proposers for d in designs] == [("b", "a", "c"), ("c", "a", "b")]
    same = warm_start.family(roles, [0], ["a", "b", "c"], ["a"], "all", 0, 3, [], plurality_sizes=[3],
                             by_accuracy=["c", "a", "b"], by_cost=["c", "a", "b"])
    assert len(same) == 1  # one design when the orders agree


def test_without_plurality_the_family_has_no_plurality_vote(tmp_path):
    cfg = _thirds_cfg(tmp_path, arch="proposer_slots: 3, allow_skip: true, decision_inputs: all")
    setup = build_training(cfg, client=ThirdsClient(reply=_thirds_reply))
    found = warm_start.search(cfg, setup, reward_function(cfg.reward).of_trace, "weak")
    assert not any(r["design"].startswith("plurality") for r in found.rows)
    cfg2 = _thirds_cfg(tmp_path / "with")
    with_votes = warm_start.search(cfg2, build_training(cfg2, client=ThirdsClient(reply=_thirds_reply)),
                                   reward_function(cfg2.reward).of_trace, "weak")
    assert found.rows[0]["reward"] < with_votes.rows[0]["reward"]  # a 2/3-right single, or `big` at 30x


def test_a_warm_started_policy_chooses_the_plurality_vote(tmp_path):
    setup = _trained(_thirds_cfg(tmp_path, "stage1.warm_start_bc=1.0", "stage1.steps=10"),
                     ThirdsClient(reply=_thirds_reply))
    chooser = DesignChooser(setup.policy, setup.builder, ChoiceSettings(route="random", decision=setup.decision, n_candidates=2))
    chosen = [chooser.mixtures_on(q, [()])[0] for q in setup.val]
    assert all(d.mixtures == setup.warm_design.mixtures for d in chosen)
    assert setup.warm_design.summary().startswith("plurality vote of 3")


def _mixed(setup, minority: int):
    """The set-up with every search question given a component: the last `minority` of train +
    val are `b`, the rest `a` (a mixed task's `meta["component"]`)."""
    qs = [*setup.train, *setup.val]
    comp = {q.id: ("b" if i >= len(qs) - minority else "a") for i, q in enumerate(qs)}
    tag = lambda part: [replace(q, meta={**q.meta, "component": comp[q.id]}) for q in part]  # noqa: E731
    return replace(setup, train=tag(setup.train), val=tag(setup.val)), comp


def test_component_weighting_ranks_designs_on_the_mean_over_components(tmp_path):
    """A planted mixed task (accuracy reward): 20 questions of component `a`, 4 of `b`. `big` is
    right on every `a` question and no `b` one (question mean 0.833, mean over components 0.5);
    `x` on half of `a` and every `b` (0.583; 0.75). Weighing questions picks `big`, weighing
    components — what `accuracy_task_mean` reports — picks `x`."""
    task = get_task("synthetic")
    picks = {}
    for weighting in ("question", "component"):
        c = _cfg(tmp_path / weighting, "reward.shape=linear", "reward.cost_lambda=0",
                 f"stage1.warm_start_weighting={weighting}")
        holder = {}

        def reply(request):
            q = task.get(request.metadata["question_id"])
            comp, order = holder["comp"][q.id], holder["order"][q.id]
            right = comp == "a" if request.model == "big" else (
                request.model == "x" and (comp == "b" or order % 2 == 0))
            wrong = "A" if q.gold != "A" else "B"
            if q.meta.get("answer_kind") != "choice":
                wrong = str(int(float(q.gold)) + 1) if str(q.gold).lstrip("-").isdigit() else "12345"
            return task.render_answer(q.gold if right else wrong, q)

        setup, comp = _mixed(build_training(c, client=PricedClient(reply=reply)), minority=4)
        holder.update(comp=comp, order={qid: i for i, qid in enumerate(comp)})
        found = warm_start.search(c, setup, reward_function(c.reward).of_trace, "weak")
        picks[weighting] = found.rows[0]
        assert ("components weighed equally" in found.queries) == (weighting == "component")
    assert (picks["question"]["design"], picks["question"]["accuracy"]) == ("single big", pytest.approx(20 / 24))
    assert (picks["component"]["design"], picks["component"]["accuracy"]) == ("single x", pytest.approx(0.75))


def test_with_one_component_component_weighting_is_the_plain_search(tmp_path):
    """Every single task: one component (or none), so the weights are uniform and the capped
    search questions the first ones — the same table, number for number, as `question`."""
    tables = {}
    for weighting in ("question", "component"):
        c = _cfg(tmp_path / weighting, "stage1.warm_start_queries=20", f"stage1.warm_start_weighting={weighting}")
        setup, _ = _mixed(build_training(c, client=PricedClient(reply=_reply)), minority=0)
        assert warm_start.question_weights(c, [*setup.train, *setup.val]) is None
        found = warm_start.search(c, setup, reward_function(c.reward).of_trace, "weak")
        tables[weighting] = (found.to_dict()["rows"], found.design)
    assert tables["question"] == tables["component"]


def test_a_capped_search_draws_its_questions_evenly_over_the_components(tmp_path):
    """12 questions of `a`, 3 of `b`, capped at 8: `b` keeps all 3, `a` the first 5, in their
    order; weighed per component `b`'s questions weigh 5/3 of `a`'s, each component half the total."""
    from hieramas_gnn.tasks.base import Question

    c = _cfg(tmp_path)
    qs = [Question(id=f"q{i}", task="t", text="?", gold="A", meta={"component": "b" if i % 5 == 4 else "a"})
          for i in range(15)]
    picked = warm_start.first_questions(c, qs, 8)
    assert [q.id for q in picked] == ["q0", "q1", "q2", "q3", "q4", "q5", "q9", "q14"]
    w = warm_start.question_weights(c, picked)
    assert w.sum() == pytest.approx(8) and w[[4, 6, 7]].sum() == pytest.approx(4)
    plain = _cfg(tmp_path / "plain", "stage1.warm_start_weighting=question")
    assert warm_start.first_questions(plain, qs, 8) == qs[:8] and warm_start.question_weights(plain, qs) is None


def test_the_clone_of_a_cost_conditioned_policy_stops_only_when_every_lambda_matches():
    hits = [True] * 10 + [True] * 8 + [False] * 2  # λ = 100: 10 of 10; λ = 1000: 8 of 10
    lams = [100.0] * 10 + [1000.0] * 10
    assert warm_start.least_share(hits) == 0.9  # overall: above CLONE_MATCH, though one λ is at 0.8
    assert warm_start.least_share(hits, lams) == 0.8 < warm_start.CLONE_MATCH
    assert warm_start.least_share([], []) == 0.0
    with pytest.raises(ValueError, match="group keys"):
        warm_start.least_share([True], [1.0, 2.0])
