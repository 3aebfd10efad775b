"""`hieramas serve`: the OpenAI-compatible server over a tiny real bundle (sim backend, latency off).

One uvicorn server per module (in a thread, port 0, auth on); the `openai` client and `litellm`
(as an HTTP client) talk to it; answers are compared with `Policy.solve` on the same question.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

KEY = "test-key-123"


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from hieramas_gnn import Policy
    from hieramas_gnn.serve.testing import sim_bundle

    bundle = sim_bundle(tmp_path_factory.mktemp("serve") / "demo")
    return Policy.load(bundle, cache=None, backend={"sim": {"latency": "off"}})


@pytest.fixture(scope="module")
def url(policy):
    from hieramas_gnn.serve.app import ServeLimits, create_app
    from hieramas_gnn.serve.server import ServerThread

    server = ServerThread(create_app(policy, ServeLimits(api_key=KEY, body_timeout_s=1.0, max_body_bytes=4096)),
                          header_timeout_s=1.0)
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def questions():
    from hieramas_gnn.tasks import get_task

    return get_task("synthetic").load(None, "test", limit=4)


def _request(url: str, path: str, body=None, *, key: str | None = KEY, method: str | None = None,
             raw: bytes | None = None) -> tuple[int, dict, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _chat(text: str, **extra) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": text}]} | extra


def test_openai_client_gets_the_answer_policy_solve_gives(url, policy, questions):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    q = questions[0]
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": q.text}])
    expected = policy.solve(q.text)
    assert reply.choices[0].message.content == expected.text and expected.text
    assert reply.usage.total_tokens == expected.tokens > 0


def test_litellm_over_http_gets_the_answer_policy_solve_gives(url, policy, questions):
    import litellm

    q = questions[1]
    reply = litellm.completion(model="openai/demo", api_base=url + "/v1", api_key=KEY,
                               messages=[{"role": "user", "content": q.text}])
    assert reply.choices[0].message.content == policy.solve(q.text).text


def test_usage_sums_the_mas_calls_and_the_design_is_in_body_and_header(url, policy, questions):
    q = questions[2]
    status, body, headers = _request(url, "/v1/chat/completions", _chat(q.text))
    assert status == 200
    calls = body["hieramas"]["calls"]
    assert len(calls) > 1  # a MAS, not one call
    assert body["usage"]["prompt_tokens"] == sum(c["prompt_tokens"] for c in calls)
    assert body["usage"]["completion_tokens"] == sum(c["completion_tokens"] for c in calls)
    assert body["hieramas"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))
    assert json.loads(headers["x-hieramas-design"]) == body["hieramas"]["design"] == policy.design(q.text).to_dict()
    assert body["hieramas"]["correct"] in (True, False)  # a task question is graded


def test_stream_true_is_answered_as_server_sent_chunks(url, policy, questions):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    q = questions[0]
    chunks = list(client.chat.completions.create(model="demo", messages=[{"role": "user", "content": q.text}],
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == policy.solve(q.text).text
    assert chunks[-1].usage.total_tokens == policy.solve(q.text).tokens


def test_models_lists_the_bundle_by_name(url):
    import openai

    models = openai.OpenAI(base_url=url + "/v1", api_key=KEY).models.list()
    assert [m.id for m in models.data] == ["demo"]


def test_design_endpoint_returns_the_policy_design(url, policy, questions):
    q = questions[3]
    status, body, _ = _request(url, "/design", {"question": q.text, "meta": q.meta})
    assert status == 200 and body["route"] == "classifier" and 0.0 <= body["graph_score"] <= 1.0
    assert body["design"] == policy.design((q.text, q.meta)).to_dict()


def test_health_needs_no_token_and_names_the_bundle(url):
    status, body, _ = _request(url, "/health", key=None)
    assert status == 200 and body["ok"] is True and body["name"] == "demo"
    assert body["roles"] == ["planner", "solver", "verifier"] and body["route"] == "classifier"


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_wrong_or_missing_token_is_refused(url, key, questions):
    status, body, _ = _request(url, "/v1/chat/completions", _chat(questions[0].text), key=key)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("raw, status, word", [
    (b"{not json", 400, "not valid JSON"), (b"", 400, "empty"), (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"model": "demo"}).encode(), 400, "messages"),
    (json.dumps({"model": "demo", "messages": []}).encode(), 400, "messages"),
    (json.dumps({"model": "demo", "messages": [{"role": "user", "content": 7}]}).encode(), 400, "content"),
    (json.dumps({"model": "demo", "messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, "role"),
    (json.dumps({"model": "demo", "messages": [{"role": "system", "content": "x"}]}).encode(), 400, "user message"),
    (json.dumps(_chat("q", n=2)).encode(), 400, "'n'"), (json.dumps(_chat("q", stream="yes")).encode(), 400, "stream"),
    (json.dumps(_chat("q", model="gpt-4")).encode(), 404, "not served"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), 400, "model"),
    (b'{"model": "demo", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}', 413, "limit"),
])
def test_malformed_bodies_get_4xx_with_a_message_in_the_openai_format(url, raw, status, word):
    got, body, _ = _request(url, "/v1/chat/completions", raw=raw, method="POST")
    assert got == status and word in body["error"]["message"]
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_an_unknown_question_on_the_sim_backend_is_a_400_naming_it(url):
    status, body, _ = _request(url, "/v1/chat/completions", _chat("what is the meaning of life?"))
    assert status == 400 and "unknown question id 'adhoc/" in body["error"]["message"]


def test_unknown_path_is_a_json_404(url):
    status, body, _ = _request(url, "/v2/nothing", key=None)
    assert status == 404 and "unknown path" in body["error"]["message"]


def test_a_burst_of_concurrent_requests_gets_no_errors(url):
    from hieramas_gnn.serve.loadtest import run_load

    figures = run_load(48, 16, url=url, model="demo", api_key=KEY)
    assert figures["errors"] == 0 and figures["status_counts"] == {"200": 48}
    assert figures["p99_ms"] >= figures["p50_ms"] > 0


def test_stopping_the_server_finishes_the_requests_in_flight(policy, questions):
    from hieramas_gnn.serve.app import create_app
    from hieramas_gnn.serve.server import ServerThread

    slow = _Blocking(policy)
    server = ServerThread(create_app(slow))
    base = server.start()
    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(_request(base, "/v1/chat/completions",
                                                                _chat(questions[0].text))[0]))
    t.start()
    deadline = time.monotonic() + 10
    while _request(base, "/health")[1]["active"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stopper = threading.Thread(target=server.stop)
    stopper.start()  # graceful: stops accepting, waits for the request in flight
    time.sleep(0.3)
    slow.release.set()
    t.join(30)
    stopper.join(30)
    assert results == [200] and not server.thread.is_alive()


# ------------------------------------------------------------------ raw-socket faults


def _raw(url: str, data: bytes, wait_s: float = 5.0) -> tuple[bytes, float]:
    """Send `data` on a fresh connection; (first response bytes, seconds until they came)."""
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait_s) as s:
        s.sendall(data)
        out = b""
        try:
            while b"\r\n\r\n" not in out:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
    return out, time.monotonic() - start


def _head(body_len: str) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n").encode()


@pytest.mark.parametrize("length", ["-1", "abc", "4000000000"])
def test_malformed_or_huge_content_length_is_refused_at_once(url, length):
    out, seconds = _raw(url, _head(length))
    assert out.split(b" ")[1] in (b"400", b"413") and seconds < 1.0


def test_a_body_shorter_than_its_content_length_gets_408(url):
    out, seconds = _raw(url, _head("100") + b'{"model": ')
    assert out.startswith(b"HTTP/1.1 408") and seconds < 3.0


def test_a_slowloris_client_trickling_its_head_gets_408(url):
    out, seconds = _raw(url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert out.startswith(b"HTTP/1.1 408") and seconds < 3.0


# ------------------------------------------------------------------ the queue is bounded


class _Blocking:
    """A policy whose `asolve` waits until released (to fill the server's slots)."""

    def __init__(self, policy) -> None:
        self.policy, self.release, self.name = policy, threading.Event(), policy.name

    def __getattr__(self, name):
        return getattr(self.policy, name)

    async def asolve(self, q):
        await asyncio.to_thread(self.release.wait, 30)
        return await self.policy.asolve(q)


def test_a_full_queue_gives_429_at_once_not_a_hang(policy, questions):
    from hieramas_gnn.serve.app import ServeLimits, create_app
    from hieramas_gnn.serve.server import ServerThread

    slow = _Blocking(policy)
    server = ServerThread(create_app(slow, ServeLimits(max_concurrency=1, queue_limit=1)))
    base = server.start()
    results: list[int] = []
    try:
        held = [threading.Thread(target=lambda: results.append(
            _request(base, "/v1/chat/completions", _chat(questions[0].text))[0])) for _ in range(2)]
        for t in held:
            t.start()
        deadline = time.monotonic() + 10
        while _request(base, "/health")[1]["active"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        start = time.monotonic()
        status, body, _ = _request(base, "/v1/chat/completions", _chat(questions[0].text))
        assert status == 429 and body["error"]["code"] == "queue_full" and time.monotonic() - start < 2.0
        slow.release.set()
        for t in held:
            t.join(30)
        assert results == [200, 200]  # the running and the queued request both finish
    finally:
        slow.release.set()
        server.stop()


# ------------------------------------------------------------------ the command line


def _args(*argv: str):
    import argparse

    from hieramas_gnn.commands import serve

    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", "--policy", "b", *argv])


def test_serve_defaults_to_loopback_port_8000_and_no_auth(monkeypatch):
    from hieramas_gnn.commands.serve import serve_limits

    monkeypatch.delenv("HIERAMAS_API_KEY", raising=False)
    args = _args()
    assert (args.host, args.port) == ("127.0.0.1", 8000) and serve_limits(args).api_key is None


def test_serve_reads_the_api_key_from_the_environment_unless_given(monkeypatch):
    from hieramas_gnn.commands.serve import serve_limits

    monkeypatch.setenv("HIERAMAS_API_KEY", "from-env")
    assert serve_limits(_args()).api_key == "from-env"
    assert serve_limits(_args("--api-key", "flag")).api_key == "flag"


def test_a_port_in_use_is_a_clear_error():
    from hieramas_gnn.commands.serve import _check_port_free
    from hieramas_gnn.errors import UserError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(UserError, match="port in use"):
            _check_port_free("127.0.0.1", s.getsockname()[1])
