"""`hieramas serve --policy DIR [--host H] [--port P]`: a small JSON HTTP service over a bundle.

It recommends designs; it does not call LLMs (run them with your own client, or `hieramas run`).

- `GET /health` → `{"ok": true, "roles": [...], "pool": [...], "decision": ...}`
- `POST /design` with `{"question": "...", "meta": {"domain": ...}}`
  → `{"design": <Design JSON>, "graph_score": p, "route": ...}`: the design the one design-choice
  function (`policy/choose.py`) picks under the bundle's trained route (the same design
  `hieramas eval` and `hieramas run` choose); `graph_score` is P(good | DAG, query) of it.

Bad requests get status 400 and `{"error": "..."}` naming the problem. Standard library only
(`http.server`); requests are served one at a time through one lock (the policy is small).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a policy bundle's design recommendations over HTTP (JSON)")
    p.add_argument("--policy", required=True, help="policy bundle folder (from `hieramas export`)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.set_defaults(func=run)


class DesignService:
    """The policy, its graph builder and a lock; `recommend(body) -> dict` answers /design."""

    def __init__(self, bundle: str, embed_cache: str | None = None) -> None:
        from hieramas_gnn.export import load_chooser

        self.chooser, self.meta = load_chooser(bundle, embed_cache=embed_cache)
        self.policy, self.builder = self.chooser.policy, self.chooser.builder
        self.lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "roles": self.meta.role_names, "pool": self.meta.model_names,
                "decision": self.meta.decision}

    def recommend(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        question = body.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("'question' must be a non-empty string")
        meta = body.get("meta") or {}
        if not isinstance(meta, dict):
            raise ValueError("'meta' must be an object")
        unknown = sorted(set(body) - {"question", "meta"})
        if unknown:
            raise ValueError(f"unknown field(s) {unknown} (known: question, meta)")
        with self.lock, torch.no_grad():
            design = self.chooser.designs([(question, meta)])[0]
            logit = self.chooser.score((question, meta), [design])
        return {"design": design.to_dict(), "graph_score": float(torch.sigmoid(logit)[0]),
                "route": self.chooser.settings.route}


def make_server(service: DesignService, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server bound to (host, port) answering with `service`."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path == "/health":
                self._send(200, service.health())
            else:
                self._send(404, {"error": f"unknown path {self.path!r} (GET /health, POST /design)"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/design":
                self._send(404, {"error": f"unknown path {self.path!r} (POST /design)"})
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the request body must be a JSON object")
                self._send(200, service.recommend(body))
            except (ValueError, json.JSONDecodeError) as exc:
                self._send(400, {"error": str(exc)})

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            return

    return ThreadingHTTPServer((host, port), Handler)


def run(args: argparse.Namespace) -> int:
    service = DesignService(args.policy, args.embed_cache)
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving policy {args.policy} on http://{host}:{port} (POST /design, GET /health); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
