"""A scripted OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 (a free port).

Used to run the real HTTP path (litellm's `openai/` provider, the openai SDK, httpx) against a
server whose failures the test chooses. Each request consumes the next scripted action:

- `ok`:          200 with a chat completion whose text is `echo: <last user message>`;
- `429`:         429 with a `Retry-After` header (`retry_after_s`);
- `500`:         500 with an OpenAI-style error body;
- `hang`:        waits `hang_s` (or until the server stops) before answering ok: a timeout;
- `malformed`:   200 with a body that is not JSON.

When the script is empty every request is `ok`. The server counts requests and records the
headers and the JSON body of each one, so tests can assert what was (and was not) sent.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACTIONS = ("ok", "429", "500", "hang", "malformed")


@dataclass
class SeenRequest:
    """What one request carried: its path, headers (lower-cased names) and parsed JSON body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    action: str


@dataclass
class ServerScript:
    """The queue of actions and the knobs the actions use."""

    actions: deque[str] = field(default_factory=deque)
    retry_after_s: float = 1.0
    hang_s: float = 10.0


def _completion_body(body: dict[str, Any] | None) -> dict[str, Any]:
    messages = (body or {}).get("messages") or [{"content": ""}]
    last = str(messages[-1].get("content", ""))
    text = f"echo: {last}"
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion_tokens = len(text.split())
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
        "model": (body or {}).get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as srv:`; `srv.base_url` ends in `/v1`."""

    def __init__(self) -> None:
        self.script = ServerScript()
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    # -- scripting -------------------------------------------------------------------------
    def push(self, *actions: str) -> None:
        """Append actions to the script (see the module docstring)."""
        for action in actions:
            if action not in ACTIONS:
                raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
        with self._lock:
            self.script.actions.extend(actions)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- request handling ------------------------------------------------------------------
    def _next_action(self) -> str:
        with self._lock:
            return self.script.actions.popleft() if self.script.actions else "ok"

    def _record(self, seen: SeenRequest) -> None:
        with self._lock:
            self.requests.append(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                action = server._next_action()
                headers = {k.lower(): v for k, v in self.headers.items()}
                server._record(SeenRequest(self.path, headers, body, raw, action))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                elif action == "429":
                    err = {"error": {"message": "rate limited", "type": "rate_limit_error"}}
                    self._send(429, json.dumps(err).encode(),
                               {"Retry-After": f"{server.script.retry_after_s:g}"})
                elif action == "500":
                    err = {"error": {"message": "internal error", "type": "server_error"}}
                    self._send(500, json.dumps(err).encode())
                elif action == "malformed":
                    self._send(200, b'{"id": "chatcmpl-broken", "choices": [ {"mess')
                else:
                    if action == "hang":
                        server._stop.wait(server.script.hang_s)
                    self._send(200, json.dumps(_completion_body(body)).encode())

        return Handler
