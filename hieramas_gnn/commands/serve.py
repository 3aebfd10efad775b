"""`hieramas serve --policy DIR [--host H] [--port P]`: a small JSON HTTP service over a bundle.

It recommends designs; it does not call LLMs (run them with your own client, or `hieramas run`).

- `GET /health` → `{"ok": true, "roles": [...], "pool": [...], "decision": ...}`
- `POST /design` with `{"question": "...", "meta": {"domain": ...}, "candidates": 0, "seed": 0}`
  → `{"design": <Design JSON>, "graph_score": p}`: the policy's greedy design, or with
  `candidates: K` the best of K sampled designs by the graph-score head; `graph_score` is
  P(good | DAG, query) of the returned design.

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
        from hieramas_gnn.export import load_policy

        self.policy, self.meta = load_policy(bundle)
        self.builder = self.meta.graph_builder(cache_dir=embed_cache)
        self.lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "roles": self.meta.role_names, "pool": self.meta.model_names,
                "decision": self.meta.decision}

    def recommend(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        from hieramas_gnn.commands.run import choose_design
        from hieramas_gnn.policy.graph import dag_edge_index

        question = body.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("'question' must be a non-empty string")
        meta = body.get("meta") or {}
        candidates, seed = body.get("candidates", 0), body.get("seed", 0)
        if not isinstance(meta, dict) or not isinstance(candidates, int) or not isinstance(seed, int):
            raise ValueError("'meta' must be an object, 'candidates' and 'seed' integers")
        decision = body.get("decision") or self.meta.decision
        if decision not in self.meta.model_names:
            raise ValueError(f"decision model {decision!r} is not in the pool {self.meta.model_names}")
        with self.lock, torch.no_grad():
            batch = self.builder.batch([(question, meta)])
            design = choose_design(self.policy, batch, decision, min(candidates, 256), seed)
            logit = self.policy.graph_logits(batch, dag_edge_index(batch, [design.edges]))
        return {"design": design.to_dict(), "graph_score": float(torch.sigmoid(logit)[0])}


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
