"""Per-request limits on a design's LLM calls and sequential rounds: how they are measured, the
rule that fits a design into them, and that every way of asking for a design (Python, HTTP body
and headers, `hieramas eval`) gets one within them — and exactly today's design without them."""

from __future__ import annotations

import json
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
from hieramas_gnn.mas.limits import (
    RequestLimits,
    check_limit,
    design_calls,
    design_rounds,
    fit_design,
    vote_rounds,
)
from hieramas_gnn.mas.supernode import more_to_ask

FAST = {"cache": None, "backend": {"sim": {"latency": "off"}}}
KEY = "limits-key"
ROUTES = ("classifier", "random", "edges")
GRADABLE = frozenset({"solver", "critic"})


# ----------------------------------------------------------------------------- measures
def _brute_vote_rounds(k: int) -> int:
    """The most rounds of `ask_until_settled` over every answer sequence (answers 0..k-1 or None)."""

    @cache
    def worst(answers: tuple) -> int:
        n = more_to_ask(list(answers), k)
        if n == 0:
            return 0
        batch = [()]
        for _ in range(n):
            batch = [b + (a,) for b in batch for a in (None, *range(k))]
        return 1 + max(worst(b + answers) for b in batch)

    return worst(())


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_vote_rounds_is_the_worst_case_of_the_settling_vote(k):
    assert vote_rounds(k) == _brute_vote_rounds(k)


def _d(mixtures, edges=(), inputs="sinks", roles=("planner", "solver", "critic")):
    mixtures = list(mixtures) + [None] * (len(roles) - len(mixtures))
    return Design(roles, tuple(mixtures), tuple(edges), "a", inputs)


@pytest.mark.parametrize("design, calls, rounds", [
    (_d([]), 1, 1),                                                           # the decision model alone
    (_d([None, Mixture(("b",), "b")], inputs="all"), 1, 1),                   # single model b: no decision call
    (_d([Mixture(("b",), "b")], inputs="all"), 2, 2),                         # a planner alone: the decision reads it
    (_d([None, Mixture(("a", "b", "c"), "d")]), 5, 3),                        # moa 3 -> d, then the decision
    (_d([None, Mixture(("a", "b", "c"), PLURALITY)], inputs="all"), 3, 2),    # a settling vote of 3
    (_d([Mixture(("a",), "a"), Mixture(("b", "c"), "a")], [(0, 1)]), 5, 4),   # a chain: 1 + 2 rounds + decision
    (_d([Mixture(("a",), "a"), None, Mixture(("c",), "c")], [(0, 1), (1, 2)]), 3, 3),  # bridged through a skip
])
def test_calls_and_rounds_of_designs(design, calls, rounds):
    assert (design_calls(design, GRADABLE), design_rounds(design, GRADABLE)) == (calls, rounds)


@pytest.mark.parametrize("bad", [True, False, 1.5, 2.0, float("nan"), float("inf"), "3", 0, -2, [1], None])
def test_bad_limits_are_refused_naming_the_field(bad):
    if bad is None:
        assert RequestLimits.make(None, None).active is False
        return
    for field in ("max_calls", "max_rounds"):
        with pytest.raises(UserError, match=field):
            RequestLimits.make(**{field: bad})


def test_text_limits_only_where_they_arrive_as_text():
    assert check_limit(" 3 ", "h", text=True) == 3
    for bad in ("3.0", "-1", "0", "nan", "", "1e3"):
        with pytest.raises(UserError, match="^h"):
            check_limit(bad, "h", text=True)


# ----------------------------------------------------------------------------- the fitting rule
MODELS = ("a", "b", "c", "d")


@st.composite
def designs(draw):
    n = 3
    mixtures = []
    for _ in range(n):
        if draw(st.booleans()) and draw(st.booleans()):
            mixtures.append(None)
            continue
        props = tuple(draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=6)))
        synth = draw(st.sampled_from((*MODELS, PLURALITY)))
        mixtures.append(Mixture(props, synth))
    edges = [(s, d) for s in range(n) for d in range(s + 1, n) if draw(st.booleans())]
    return _d(mixtures, edges, draw(st.sampled_from(("sinks", "all"))))


@settings(max_examples=300, deadline=None)
@given(designs(), st.integers(1, 12), st.integers(1, 8), st.booleans(), st.booleans())
def test_fit_design_fits_and_only_removes(design, calls, rounds, limit_calls, limit_rounds):
    limits = RequestLimits(calls if limit_calls else None, rounds if limit_rounds else None, GRADABLE)
    fitted = fit_design(design, limits)
    assert limits.fits(fitted)
    if limits.fits(design):
        assert fitted is design
        return
    assert design_calls(fitted, GRADABLE) <= design_calls(design, GRADABLE)
    assert design_rounds(fitted, GRADABLE) <= design_rounds(design, GRADABLE)
    assert fitted.decision == design.decision and fitted.roles == design.roles
    before = design.active_dag()
    for i in fitted.active():  # a role keeps its first (most likely) proposers
        assert design.mixtures[i] is not None
        assert design.mixtures[i].proposers[:fitted.mixtures[i].k] == fitted.mixtures[i].proposers
    assert set(fitted.active_dag().edges) <= set(before.edges)


def test_nothing_fits_one_call_but_the_decision_model_alone_or_one_model():
    moa = _d([Mixture(("a",), "a"), Mixture(("b", "c"), "d")], [(0, 1)])
    assert fit_design(moa, RequestLimits(1, None, GRADABLE)) == _d([])
    # a lone vote cut to its first proposer is single model b: one call, no decision call
    vote = _d([None, Mixture(("b", "c", "a"), PLURALITY)], inputs="all")
    assert fit_design(vote, RequestLimits(1, None, GRADABLE)) == _d([None, Mixture(("b",), "b")], inputs="all")
    # two rounds: the chain loses its edge (both roles run in the first round), the moa its synthesizer
    fitted = fit_design(moa, RequestLimits(None, 2, GRADABLE))
    assert fitted.edges == () and fitted.mixtures[1] == Mixture(("b",), "b") and design_rounds(fitted) == 2


# ----------------------------------------------------------------------------- the policy
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from hieramas_gnn.serve.testing import sim_bundle

    root = tmp_path_factory.mktemp("limits")
    return {route: sim_bundle(root / route, route=route) for route in ROUTES}


@pytest.fixture(scope="module")
def policies(bundles):
    from hieramas_gnn import Policy

    return {route: Policy.load(bundles[route], **FAST) for route in ROUTES}


@pytest.fixture(scope="module")
def questions():
    from hieramas_gnn.tasks import get_task

    return [q.text for q in get_task("synthetic").load(None, "test", limit=6)]


@pytest.mark.parametrize("route", ROUTES)
def test_without_limits_the_design_is_today_s(bundles, policies, questions, route):
    from hieramas_gnn.bundle import load_chooser

    policy = policies[route]
    chooser, _ = load_chooser(bundles[route], pool=policy.pool)
    for q in questions:
        today = chooser.designs([q])[0].to_json()
        assert policy.design(q).to_json() == today
        assert policy.design(q, max_calls=None, max_rounds=None).to_json() == today
        assert policy.chooser.ranked(q)[0].to_json() == today  # the route's preference starts at its choice
        assert policy.design(q, max_calls=10_000, max_rounds=10_000).to_json() == today


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), i=st.integers(0, 5), calls=st.none() | st.integers(1, 9),
       rounds=st.none() | st.integers(1, 5))
def test_every_chosen_design_keeps_within_the_limits(policies, questions, route, i, calls, rounds):
    policy, q = policies[route], questions[i]
    design = policy.design(q, max_calls=calls, max_rounds=rounds)
    limits = policy.request_limits(calls, rounds)
    if limits is None:
        return
    assert limits.fits(design)
    if limits.fits(policy.design(q)):
        assert design == policy.design(q)  # a choice within the limits is kept as it is
    fitting = [d for d in policy.chooser.ranked(q) if limits.fits(d)]
    if fitting:
        assert design == fitting[0]  # else: the route's best candidate that fits


def test_the_batch_and_solve_paths_keep_the_limits(policies, questions):
    policy = policies["classifier"]
    many = policy.designs(questions, max_calls=2, max_rounds=2)
    assert many == [policy.design(q, max_calls=2, max_rounds=2) for q in questions]
    sols = policy.solve_many(questions[:2], max_calls=2, max_rounds=2)
    for sol in sols:
        assert sol.limits["max_calls"] == 2 and sol.limits["calls"] <= 2 and sol.limits["rounds"] <= 2
        assert len(sol.trace["calls"]) <= 2
    assert policy.solve(questions[0]).limits is None
    with pytest.raises(UserError, match="max_rounds"):
        policy.design(questions[0], max_rounds=0)
    with pytest.raises(UserError, match="max_calls"):
        policy.solve(questions[0], max_calls=1.0)


# ----------------------------------------------------------------------------- HTTP
@pytest.fixture(scope="module")
def url(policies):
    from hieramas_gnn.serve.app import ServeLimits, create_app
    from hieramas_gnn.serve.server import ServerThread

    server = ServerThread(create_app(policies["classifier"], ServeLimits(api_key=KEY)), header_timeout_s=1.0)
    yield server.start()
    server.stop()


def _post(url, body, headers=None, path="/v1/chat/completions"):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def _chat(policy, q, **extra):
    return {"model": policy.name, "messages": [{"role": "user", "content": q}], **extra}


def test_served_limits_from_the_body_or_the_headers(url, policies, questions):
    policy, q = policies["classifier"], questions[0]
    expected = policy.design(q, max_calls=2, max_rounds=2).to_dict()
    for extra, headers in (({"max_calls": 2, "max_rounds": 2}, None),
                           ({}, {"X-Hieramas-Max-Calls": "2", "X-Hieramas-Max-Rounds": "2"}),
                           ({"max_calls": 2}, {"X-Hieramas-Max-Calls": "2", "X-Hieramas-Max-Rounds": "2"})):
        status, body, head = _post(url, _chat(policy, q, **extra), headers)
        assert status == 200, body
        assert json.loads(head["x-hieramas-design"]) == expected == body["hieramas"]["design"]
        limits = body["hieramas"]["limits"]
        assert limits["max_calls"] == limits["max_rounds"] == 2 and limits["calls"] <= 2 and limits["rounds"] <= 2
        assert len(body["hieramas"]["calls"]) <= 2
    status, body, _ = _post(url, {"question": q, "max_rounds": 1}, path="/design")
    assert status == 200 and body["design"] == policy.design(q, max_rounds=1).to_dict()
    assert body["limits"]["rounds"] == 1
    status, body, _ = _post(url, _chat(policy, q))
    assert status == 200 and "limits" not in body["hieramas"]


@pytest.mark.parametrize("body, headers, field", [
    ({"max_calls": 0}, None, "max_calls"), ({"max_calls": 2.0}, None, "max_calls"),
    ({"max_rounds": True}, None, "max_rounds"), ({"max_rounds": "2"}, None, "max_rounds"),
    ({}, {"X-Hieramas-Max-Calls": "two"}, "max_calls"), ({}, {"X-Hieramas-Max-Rounds": "nan"}, "max_rounds"),
    ({"max_calls": 2}, {"X-Hieramas-Max-Calls": "3"}, "max_calls"),
    ({"max_rounds": 1}, {"X-Hieramas-Max-Rounds": "2"}, "max_rounds"),
])
def test_bad_or_disagreeing_limits_over_http_get_a_400_naming_the_field(url, policies, questions, body, headers,
                                                                         field):
    status, answer, _ = _post(url, _chat(policies["classifier"], questions[0], **body), headers)
    assert status == 400, answer
    assert answer["error"]["param"] == field and field in answer["error"]["message"]


# ----------------------------------------------------------------------------- eval
def test_eval_keeps_the_limits_and_reports_them(bundles, tmp_path, capsys):
    from hieramas_gnn.cli import main

    bundle = str(bundles["classifier"])
    common = ["eval", "--policy", bundle, "--task", "synthetic", "--split", "test", "--limit", "4",
              "--cache-mode", "off", "--sim-latency", "off", "--embed-cache", str(tmp_path / "emb")]
    assert main([*common, "--max-calls", "2", "--max-rounds", "2", "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    row = data["results"][0]
    assert data["limits"] == {"max_calls": 2, "max_rounds": 2}
    assert row["limits"]["max_calls"] == 2 and row["limits"]["calls"] <= 2 and row["limits"]["rounds"] <= 2
    assert row["calls"] <= 2
    capsys.readouterr()
    for flag, value in (("--max-calls", "0"), ("--max-rounds", "1.5"), ("--max-calls", "x")):
        assert main([*common, flag, value]) == 2
        assert flag in capsys.readouterr().err
    assert main(["eval", "--design", str(tmp_path / "d.json"), "--task", "synthetic", "--max-calls", "2"]) == 2
    assert "--max-calls / --max-rounds need --policy" in capsys.readouterr().err
