"""`hieramas cache stats|export|import`: inspect a rollout cache and share it as jsonl.

    hieramas cache stats  --cache runs/cache.sqlite
    hieramas cache export --cache runs/cache.sqlite --out rollouts.jsonl
    hieramas cache import --cache runs/cache.sqlite --src rollouts.jsonl

An export holds, per line, the key, the litellm model string, the text, usage, cost, latency,
time and the canonical request (never a credential). Import keeps existing records (the first
answer stored for a key wins) and checks that each key is the sha256 of its request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("cache", help="rollout cache: stats, export / import as jsonl",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="records, cost, tokens, records per model")
    stats.add_argument("--cache", required=True, help="cache file (SQLite)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    export = sub.add_parser("export", help="write every record to a jsonl file")
    export.add_argument("--cache", required=True, help="cache file (SQLite)")
    export.add_argument("--out", required=True, help="jsonl file to write")
    imp = sub.add_parser("import", help="add the records of a jsonl export")
    imp.add_argument("--cache", required=True, help="cache file (SQLite; created if absent)")
    imp.add_argument("--src", required=True, help="jsonl file to read")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    import json
    from dataclasses import asdict

    from hieramas_gnn.llm.cache import RolloutCache

    action = args.cache_command
    if action in ("stats", "export") and not Path(args.cache).exists():
        raise UserError(f"cache {args.cache}: no such file")
    with RolloutCache(args.cache, "rw") as cache:
        if action == "stats":
            st = cache.stats()
            if args.json:
                print(json.dumps(asdict(st), indent=2))
                return 0
            print(f"cache {st.path}: {st.records} records, ${st.cost_usd:.4f} paid, "
                  f"{st.prompt_tokens} prompt + {st.completion_tokens} completion tokens, "
                  f"{st.size_bytes / 1e6:.1f} MB")
            for model, n in st.by_model.items():
                print(f"  {model}: {n}")
        elif action == "export":
            n = cache.export_jsonl(args.out)
            print(f"exported {n} records to {args.out}")
        else:
            added, present = cache.import_jsonl(args.src)
            print(f"imported {added} records into {args.cache} ({present} already present)")
    return 0
