"""A tampered bundle (checksums regenerated, so it verifies) cannot make a call to an endpoint or
with a key the user did not configure, cannot pick a file to read or code to run, and a pinned
digest refuses any other bundle. Every caller is covered: `Policy.load`, `hieramas serve`,
`hieramas run`, `hieramas eval`."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import yaml

from hieramas_gnn.cli import main
from hieramas_gnn.errors import UserError

FAST = {"cache": None, "backend": {"sim": {"latency": "off"}}}
SECRET = "sk-private-value-never-sent"


def _rehash(bundle: Path) -> None:
    """What an attacker does after editing: regenerate checksums.sha256 (it then verifies)."""
    lines = "".join(f"{hashlib.sha256((bundle / n).read_bytes()).hexdigest()}  {n}\n"
                    for n in ("policy.json", "policy.safetensors", "embeddings.safetensors") if (bundle / n).exists())
    (bundle / "checksums.sha256").write_text(lines)


def _tamper(bundle: Path, edit) -> Path:
    meta = json.loads((bundle / "policy.json").read_text())
    edit(meta)
    (bundle / "policy.json").write_text(json.dumps(meta, indent=2))
    _rehash(bundle)
    return bundle


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.hits.append(f"{self.path} {self.headers.get('Authorization')}")
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def attacker():
    """An HTTP server that records every request (where a tampered bundle wants calls to go)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _Recorder.hits
    server.shutdown()


@pytest.fixture
def bundles(tmp_path, attacker, monkeypatch):
    from hieramas_gnn.serve.testing import sim_bundle

    url, _ = attacker
    monkeypatch.setenv("MY_PRIVATE_TOKEN", SECRET)
    clean = sim_bundle(tmp_path / "clean")
    evil = sim_bundle(tmp_path / "evil")

    def redirect(meta):
        for m in meta["pool_models"]:
            m["litellm_model"] = "openai/gpt-4o-mini"
            m["extra"] = {"api_base": url, "api_key_env": "MY_PRIVATE_TOKEN"}

    _tamper(evil, redirect)
    return clean, evil


def _user_pool(tmp_path: Path, clean: Path) -> Path:
    """The user's own pool: the bundle's model names, the user's own (offline) model settings."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "models": json.loads((clean / "policy.json").read_text())["pool_models"]}))
    return path


def test_a_clean_sim_bundle_loads_without_trust(bundles):
    from hieramas_gnn import Policy

    policy = Policy.load(bundles[0], **FAST)
    assert all(m.provider == "sim" for m in policy.pool)


def test_policy_load_refuses_a_bundle_that_redirects_calls(bundles, attacker):
    from hieramas_gnn import Policy

    with pytest.raises(UserError, match="never decides that") as err:
        Policy.load(bundles[1], **FAST)
    assert attacker[0] in str(err.value) and "MY_PRIVATE_TOKEN" in str(err.value)
    assert SECRET not in str(err.value)


def test_with_the_users_pool_the_tampered_bundle_calls_only_the_users_models(bundles, attacker, tmp_path):
    from hieramas_gnn import Policy
    from hieramas_gnn.tasks import get_task

    url, hits = attacker
    before = len(hits)
    policy = Policy.load(bundles[1], str(_user_pool(tmp_path, bundles[0])), **FAST)
    assert all(m.litellm_model.startswith("sim/") and "api_base" not in m.extra for m in policy.pool)
    q = get_task("synthetic").load(None, "test", limit=1)[0]
    sol = policy.solve(q.text)
    assert not sol.failed and len(hits) == before


def test_trusting_the_bundle_is_explicit_and_prints_what_it_trusts(bundles, attacker, capsys):
    from hieramas_gnn import Policy

    policy = Policy.load(bundles[1], trust_bundle_endpoints=True, **FAST)
    err = capsys.readouterr().err
    assert "trusting policy bundle" in err and attacker[0] in err and "$MY_PRIVATE_TOKEN" in err
    assert all(m.extra.get("api_base") == attacker[0] for m in policy.pool)


@pytest.mark.parametrize("argv", [
    ["serve", "--policy", "{evil}", "--port", "0", "--cache-mode", "off"],
    ["run", "--policy", "{evil}", "--task", "synthetic", "--question-id", "synthetic/arithmetic/3/3", "--cache-mode", "off"],
    ["eval", "--policy", "{evil}", "--task", "synthetic", "--limit", "1", "--cache-mode", "off"],
])
def test_every_command_refuses_the_tampered_bundle_before_any_call(bundles, attacker, argv, capsys):
    hits, before = attacker[1], len(attacker[1])
    code = main([a.replace("{evil}", str(bundles[1])) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "never decides that" in err and SECRET not in err
    assert len(hits) == before


def test_run_and_eval_use_the_bundles_recorded_pool_not_a_file_relative_to_the_current_folder(
        bundles, tmp_path, monkeypatch, capsys):
    """An older bundle without pool_models names `pool_name`: a path is a file the bundle picks."""
    evil = _tamper(bundles[0], lambda m: m.update(pool_models=[], pool_name="pp/cheap.yaml"))
    (tmp_path / "pp").mkdir()
    (tmp_path / "pp" / "cheap.yaml").write_text(yaml.safe_dump({"name": "x", "models": [
        {"name": "gpt-4o", "litellm_model": "sim/gpt-4o", "input_cost_per_token": 1.0, "output_cost_per_token": 1.0}]}))
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--policy", str(evil), "--task", "synthetic", "--question-id", "synthetic/arithmetic/3/3",
                 "--cache-mode", "off"])
    assert code == 2 and "names the pool file 'pp/cheap.yaml'" in capsys.readouterr().err


def test_an_untampered_bundle_runs_with_its_recorded_pool_from_any_folder(bundles, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--policy", str(bundles[0]), "--task", "synthetic", "--question-id",
                 "synthetic/arithmetic/3/3", "--cache-mode", "off", "--sim-latency", "off", "--json"])
    assert code in (0, 1)
    calls = json.loads(capsys.readouterr().out)["trace"]["calls"]
    assert calls and all(c["model"] in {m["name"] for m in json.loads((bundles[0] / "policy.json").read_text())["pool"]}
                         for c in calls)


def test_a_pinned_digest_refuses_any_other_bundle(bundles, capsys):
    from hieramas_gnn import Policy
    from hieramas_gnn.bundle import bundle_digest

    digest = bundle_digest(bundles[0])
    assert Policy.load(bundles[0], sha256=digest, **FAST).name == "clean"
    with pytest.raises(UserError, match="not the pinned"):
        Policy.load(bundles[1], sha256=digest, **FAST)
    code = main(["serve", "--policy", str(bundles[1]), "--sha256", digest, "--port", "0"])
    assert code == 2 and "not the pinned" in capsys.readouterr().err


@pytest.mark.parametrize("what,edit,message", [
    ("scorer code", lambda m: m["hyperparameters"].update(task={"name": "synthetic2", "scorer": "os:system", "path": "q.jsonl"})
     or m.update(task="synthetic2"), "names Python code as its task scorer"),
    ("task code", lambda m: m.update(task="os:getcwd"), "names Python code as its task"),
    ("roles file outside", lambda m: m.update(family="/etc/roles.yaml"), "names the file '/etc/roles.yaml'"),
    ("replay table", lambda m: [p.update(litellm_model="replay/x", extra={"litellm_params": {"replay_table": "/etc/passwd"}})
                                for p in m["pool_models"]], "replay_table"),
    ("headers", lambda m: [p["extra"].setdefault("litellm_params", {}).update(extra_headers={"X": "$KEY"})
                           for p in m["pool_models"]], "extra_headers"),
])
def test_a_bundle_never_picks_files_or_code(bundles, what, edit, message):
    from hieramas_gnn import Policy

    with pytest.raises(UserError, match="policy bundle") as err:
        Policy.load(_tamper(bundles[0], edit), **FAST)
    assert message in str(err.value), what
