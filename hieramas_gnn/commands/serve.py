"""`hieramas serve --policy BUNDLE [--host 127.0.0.1] [--port 8000]`: the learned MAS over HTTP.

An OpenAI-compatible server (FastAPI + uvicorn, `hieramas_gnn/serve/`): `POST /v1/chat/completions`
runs the MAS the bundle chooses for the last user message, `GET /v1/models`, `POST /design` (the
design only), `GET /health`. See docs/SERVING.md for the fields, limits and error format.
Loopback by default; `--api-key` (or env `HIERAMAS_API_KEY`) turns on bearer-token auth.
"""

from __future__ import annotations

import argparse
import os
import sys

from hieramas_gnn.bundle_trust import add_trust_args
from hieramas_gnn.errors import UserError
from hieramas_gnn.serve.policy import Policy


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a policy bundle's MAS over HTTP (OpenAI-compatible)")
    p.add_argument("--policy", required=True, help="policy bundle folder (from `hieramas train`)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--pool", default=None, help="pool name or YAML with the bundle's model names and "
                   "your own litellm model strings (default: the bundle's pool)")
    p.add_argument("--cache", default="runs/rollouts.sqlite", help="rollout cache file")
    p.add_argument("--cache-mode", default="rw", choices=["rw", "replay", "off"], help="rollout cache mode")
    p.add_argument("--sim-latency", default=None, choices=["lognormal", "fixed", "off"],
                   help="latency of the offline sim backend (default: the backend's default)")
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.add_argument("--api-key", default=None, help="require `Authorization: Bearer KEY` "
                   "(default: env HIERAMAS_API_KEY; unset: no auth)")
    p.add_argument("--max-concurrency", type=int, default=16, help="requests running the MAS at once")
    p.add_argument("--queue-limit", type=int, default=256, help="requests waiting beyond that (then 429)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body limit (413 above)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to receive a request head or body (408)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1: the "
                   "policy's graphs are tiny and design choices run one at a time; more threads only contend)")

    add_trust_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from hieramas_gnn.serve.app import create_app  # lazy: loads fastapi
    from hieramas_gnn.serve.server import make_config  # lazy: loads fastapi

    if args.torch_threads < 1:
        raise UserError(f"--torch-threads must be >= 1, got {args.torch_threads}")
    torch.set_num_threads(args.torch_threads)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    limits = serve_limits(args)
    key = limits.api_key
    if not key and not is_loopback(args.host):
        print(f"hieramas serve: WARNING: listening on {args.host} without an API key: anyone who can reach this "
              "port can run the MAS and spend your LLM budget. Set --api-key (or HIERAMAS_API_KEY), or bind "
              "127.0.0.1.", file=sys.stderr, flush=True)
    backend = None if args.sim_latency is None else {"sim": {"latency": args.sim_latency}}
    policy = Policy.load(args.policy, args.pool, cache=args.cache, cache_mode=args.cache_mode,
                         embed_cache=args.embed_cache, backend=backend,
                         trust_bundle_endpoints=args.trust_bundle_endpoints, sha256=args.sha256)
    _check_port_free(args.host, args.port)
    server = uvicorn.Server(make_config(create_app(policy, limits), args.host, args.port,
                                        header_timeout_s=args.timeout))
    where = f"http://{args.host}:{args.port}"
    auth = "bearer auth on" if key else "no auth"
    print(f"serving policy {policy.name} ({args.policy}) on {where} ({auth}): POST /v1/chat/completions, "
          "GET /v1/models, POST /design, GET /health; Ctrl-C stops after the requests in flight", flush=True)
    try:
        server.run()  # returns after a graceful shutdown (requests in flight finished)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled gracefully
        pass
    print("hieramas serve stopped", flush=True)
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a public address


def serve_limits(args: argparse.Namespace):
    """The `ServeLimits` of the command line; the key is `--api-key`, else env `HIERAMAS_API_KEY`."""
    from hieramas_gnn.serve.app import ServeLimits  # lazy: loads fastapi

    key = args.api_key if args.api_key is not None else os.environ.get("HIERAMAS_API_KEY") or None
    return ServeLimits(max_concurrency=args.max_concurrency, queue_limit=args.queue_limit,
                       max_body_bytes=args.max_body_bytes, body_timeout_s=args.timeout, api_key=key)


def _check_port_free(host: str, port: int) -> None:
    """A clear error for a port in use or an address that cannot be bound (before uvicorn starts)."""
    import socket

    if port == 0:
        return
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                        "(port in use? pick another with --port)") from None
