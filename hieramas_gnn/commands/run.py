"""`hieramas run --policy DIR --task T --question-id ID`: run the policy's design for one query.

Loads a policy bundle (`hieramas export`), builds the query graph, picks a design and executes
it through the normal client and rollout cache, then prints the design and the trace (each
role's mixture, answer and grade; the final answer; calls, tokens, cost, cache hits).

The design is chosen by the one design-choice function (`policy/choose.py`) under the route the
bundle recorded as trained: the same design `hieramas eval` and `hieramas serve` choose for the
same question. The pool is the bundle's (`--pool` overrides; it must have the same models). A bundle
never chooses endpoints, keys, files or code (`bundle_trust.py`): one whose pool names real
providers needs `--pool` (or `--trust-bundle-endpoints`).
"""

from __future__ import annotations

import argparse
from typing import Any

from hieramas_gnn.build import ClientSettings, make_client
from hieramas_gnn.bundle import check_digest, load_chooser, read_meta
from hieramas_gnn.bundle_trust import add_trust_args, bundle_pool, check_family
from hieramas_gnn.mas.executor import run_design
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.tasks import get_task


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run a trained policy's design on one question and print the trace")
    p.add_argument("--policy", required=True, help="policy bundle folder (from `hieramas export`)")
    p.add_argument("--task", required=True, help="task name (see `hieramas tasks`)")
    p.add_argument("--question-id", required=True, help="question id within the task")
    p.add_argument("--pool", default=None, help="pool name or YAML (default: the bundle's pool)")
    p.add_argument("--cache", default="runs/rollouts.sqlite", help="rollout cache file")
    p.add_argument("--cache-mode", default="rw", choices=["rw", "replay", "off"], help="rollout cache mode")
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.add_argument("--json", action="store_true", help="print the trace as JSON instead of text")

    add_trust_args(p)
    p.set_defaults(func=run)


def run_policy(bundle: str, task_name: str, question_id: str, client: Any, *, pool: Any = None,
               embed_cache: str | None = None, trust: bool = False):
    """Load the bundle, choose the design for one question and execute it -> (design, trace)."""
    import asyncio


    chooser, meta = load_chooser(bundle, pool=pool, embed_cache=embed_cache)
    check_family(meta.family, bundle, trust)
    task = get_task(task_name)
    question = task.get(question_id)
    roleset = get_roleset(meta.family or task.family)
    design = chooser.designs([question])[0]
    trace = asyncio.run(run_design(design, question, task, client, roleset))
    return design, trace


def format_trace(design: Any, trace: Any) -> str:
    """A readable multi-line summary of one executed design."""
    lines = [f"question {trace.question_id} ({trace.task})", f"edges: {list(design.edges) or 'none'}"]
    for i, role in enumerate(design.roles):
        mx = design.mixtures[i]
        node = trace.nodes[i] if i < len(trace.nodes) else None
        what = "skipped" if mx is None else f"proposers {list(mx.proposers)} -> synthesizer {mx.synthesizer}"
        graded = "" if node is None or node.correct is None else f"  correct={node.correct}"
        answer = "" if node is None or node.answer is None else f"  answer={node.answer!r}"
        if mx is not None and mx.plurality and node is not None and None in node.proposals:
            asked = [m for m, t in zip(mx.proposers, node.proposals) if t is not None]
            what += f" (asked {asked}: settled without the rest)"
        lines.append(f"  [{i}] {role}: {what}{answer}{graded}")
    decided = any(c.position == "decision" for c in trace.calls)
    who = f"decision {design.decision}" if decided else "answer taken directly (no decision call)"
    lines.append(f"{who}: answer={trace.answer!r} correct={trace.correct}")
    if trace.failed:
        lines.append(f"FAILED: {trace.failure_reason}")
    lines.append(f"calls {trace.n_calls} (cache hits {trace.cache_hits}), tokens {trace.tokens}, "
                 f"cost ${trace.cost_usd:.6f}, latency {trace.latency_ms:.0f} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json


    check_digest(args.policy, args.sha256)
    meta = read_meta(args.policy)
    pool = bundle_pool(args.policy, meta, args.pool, trust=args.trust_bundle_endpoints)
    client = make_client(ClientSettings(cache_path=None if args.cache_mode == "off" else args.cache,
                                        cache_mode=args.cache_mode), pool)
    design, trace = run_policy(args.policy, args.task, args.question_id, client, pool=pool,
                               embed_cache=args.embed_cache, trust=args.trust_bundle_endpoints)
    if args.json:
        print(json.dumps({"design": design.to_dict(), "trace": trace.to_dict()}, indent=2))
    else:
        print(format_trace(design, trace))
    return 1 if trace.failed else 0
