"""`hieramas cache stats|verify|export|import`: inspect, check and share a rollout cache.

    hieramas cache stats  --cache runs/cache.sqlite   # also counts corrupt records (exit 1 if any)
    hieramas cache verify --cache runs/cache.sqlite   # exit 1 when a record is corrupt
    hieramas cache export --cache runs/cache.sqlite --out rollouts.jsonl
    hieramas cache import --cache runs/cache.sqlite --src rollouts.jsonl
    hieramas cache rehash --cache old.sqlite --trust-unverified   # checksums for a cache you vouch for

An export holds, per line, the key, the litellm model string, the text, usage, cost, latency,
time, the canonical request (never a credential) and the record's checksum. Import keeps existing
records (the first answer stored for a key wins), checks that each key is the sha256 of its
request and each checksum its record's, and refuses lines without one unless
`--trust-unverified`. Records without a checksum are never served; `verify` and `stats` count
them (exit 1). `stats`, `verify` and `export` open the file read-only: they never write into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import check_apart, check_regular_file
from hieramas_gnn.llm.cache import RolloutCache, read_export


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("cache", help="rollout cache: stats, export / import as jsonl",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="records, cost, tokens, records per model, records failing their checksum")
    stats.add_argument("--cache", required=True, help="cache file (SQLite)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    verify = sub.add_parser("verify", help="check every record's checksum and SQLite's integrity")
    verify.add_argument("--cache", required=True, help="cache file (SQLite)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    export = sub.add_parser("export", help="write every record to a jsonl file")
    export.add_argument("--cache", required=True, help="cache file (SQLite)")
    export.add_argument("--out", required=True, help="jsonl file to write")
    imp = sub.add_parser("import", help="add the records of a jsonl export")
    imp.add_argument("--cache", required=True, help="cache file (SQLite; created if absent)")
    imp.add_argument("--src", required=True, help="jsonl file to read")
    imp.add_argument("--trust-unverified", action="store_true",
                     help="also import lines without a checksum (exports of older versions) that you vouch for")
    rehash = sub.add_parser("rehash", help="add checksums to records without one (only for a cache you vouch for)")
    rehash.add_argument("--cache", required=True, help="cache file (SQLite)")
    rehash.add_argument("--trust-unverified", action="store_true", required=False,
                        help="required: you vouch for records nothing can verify")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    import json
    import sys
    from dataclasses import asdict



    action = args.cache_command
    check_regular_file(args.cache, "--cache")
    if action in ("stats", "export", "verify", "rehash") and not Path(args.cache).exists():
        raise UserError(f"cache {args.cache}: no such file")
    if action == "export":
        check_apart(args.out, "--out", {"--cache": args.cache})
        _check_out(Path(args.out))
    if action == "import":
        check_apart(args.cache, "--cache", {"--src": args.src})
        read_export(args.src, args.trust_unverified)  # a bad export is refused before the cache file is created
        return _import(args)
    if action == "rehash":
        with RolloutCache(args.cache, "rw") as cache:
            n = cache.rehash(trust=args.trust_unverified)
        print(f"cache {args.cache}: checksums added to {n} records")
        return 0
    with RolloutCache(args.cache, "replay") as cache:
        if action == "verify":
            rep = cache.verify()
            if args.json:
                print(json.dumps({**asdict(rep), "clean": rep.clean}, indent=2))
            else:
                print(f"cache {rep.path}: {rep.records} records, {rep.ok} ok, {rep.unverified} unverified "
                      f"(no checksum), {len(rep.bad)} corrupt; sqlite integrity: {rep.sqlite_integrity}")
                for key in rep.bad[:20]:
                    print(f"  corrupt: {key}")
                if rep.unverified:
                    print(f"hieramas: {rep.unverified} record(s) have no checksum: they are never served. If you "
                          f"vouch for this file: `hieramas cache rehash --cache {args.cache} --trust-unverified`",
                          file=sys.stderr)
            return 0 if rep.clean else 1
        if action == "stats":
            st = cache.stats()
            if args.json:
                print(json.dumps(asdict(st), indent=2))
                return 1 if st.corrupt or st.unverified else 0
            print(f"cache {st.path}: {st.records} records, ${st.cost_usd:.4f} paid, "
                  f"{st.prompt_tokens} prompt + {st.completion_tokens} completion tokens, "
                  f"{st.size_bytes / 1e6:.1f} MB; checksums: {st.corrupt} corrupt, {st.unverified} unverified")
            for model, n in st.by_model.items():
                print(f"  {model}: {n}")
            if st.corrupt:
                print(f"hieramas: {st.corrupt} record(s) fail their checksum: run `hieramas cache verify "
                      f"--cache {args.cache}` to list them", file=sys.stderr)
                return 1
            if st.unverified:
                print(f"hieramas: {st.unverified} record(s) have no checksum and are never served: run `hieramas "
                      f"cache verify --cache {args.cache}`", file=sys.stderr)
                return 1
        elif action == "export":
            n = cache.export_jsonl(args.out)
            print(f"exported {n} records to {args.out}")
    return 0


def _import(args: Any) -> int:
    """`cache import`: the records into the cache; a cache file this command created is removed
    again when the import fails (nothing half-made is left behind)."""
    path = Path(args.cache)
    created = not path.exists()
    try:
        with RolloutCache(args.cache, "rw") as cache:
            added, present = cache.import_jsonl(args.src, trust_unverified=args.trust_unverified)
    except BaseException:
        if created:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
        raise
    print(f"imported {added} records into {args.cache} ({present} already present)")
    return 0


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file path")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: directory {out.parent} does not exist")
