"""`hieramas serve`: the JSON design service over a policy bundle."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from hieramas_gnn.commands.serve import DesignService, make_server
from hieramas_gnn.export import export_policy
from hieramas_gnn.mas.design import Design
from hieramas_gnn.policy.choose import ChoiceSettings
from hieramas_gnn.policy.testing import toy_builder, toy_policy


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    builder = toy_builder(n_roles=3, n_models=3)
    bundle = export_policy(toy_policy(builder), tmp_path_factory.mktemp("serve") / "b", builder=builder,
                           decision="model1", choice=ChoiceSettings(route="classifier", decision="model1", n_candidates=4))
    server = make_server(DesignService(str(bundle)), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, body) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/design", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_lists_roles_pool_and_decision(url):
    with urllib.request.urlopen(url + "/health", timeout=30) as resp:
        body = json.loads(resp.read())
    assert body == {"ok": True, "roles": ["role0", "role1", "role2"],
                    "pool": ["model0", "model1", "model2"], "decision": "model1"}


def test_design_request_returns_a_valid_design_and_a_probability(url):
    status, body = _post(url, {"question": "what is 2 + 3?", "meta": {"domain": "algebra"}})
    assert status == 200
    design = Design.from_dict(body["design"])
    assert design.roles == ("role0", "role1", "role2") and design.decision == "model1"
    assert 0.0 <= body["graph_score"] <= 1.0


def test_design_requests_are_deterministic(url):
    a = _post(url, {"question": "q"})[1]
    b = _post(url, {"question": "q"})[1]
    assert a == b and a["route"] == "classifier"


@pytest.mark.parametrize("body, word", [({}, "question"), ({"question": "q", "candidates": 3}, "candidates"),
                                        ({"question": "q", "meta": [1]}, "object"), ([1, 2], "object")])
def test_bad_requests_get_400_naming_the_problem(url, body, word):
    status, reply = _post(url, body)
    assert status == 400 and word in reply["error"]
