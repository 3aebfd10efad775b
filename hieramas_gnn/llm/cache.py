"""The rollout cache: every completed LLM call, stored once, in a SQLite file in WAL mode.

Key: sha256 of the canonical JSON of the request (`request_key`): litellm model string,
messages, temperature, max_tokens, other sampling params, sample index, prompt-set version, and
for the offline providers (`replay/`, `sim/`) the call metadata they answer from. Credentials,
headers and api bases are never part of the key or of what is stored.

Modes: `rw` (read and write), `replay` (read only; the client raises `CacheMiss` on a miss),
`off` (no file, nothing read or written).

Durability: each `put` is its own committed transaction, so a process killed at any moment
(SIGKILL included) keeps every call that completed before it. Several processes may share one
file: WAL lets readers run beside the one writer, and `busy_timeout` makes writers queue.
`INSERT OR IGNORE` keeps the first answer stored for a key. Failed calls are never stored.

Integrity: each row carries `checksum`, the sha256 of its stored fields; `get` refuses a row
whose checksum (or key = sha256 of the request) does not match, and `verify()` (`hieramas cache
verify`) checks every row plus SQLite's own integrity check. A file that is not a rollout cache
(not SQLite, a directory, another program's database, a damaged file) raises `CacheDamaged`
("cache is damaged: ...") before anything is written to it; a FIFO or device is refused before
it is opened; a read-only file opened to write, and a cache written by a newer version (its
`user_version` above `SCHEMA_VERSION`, or columns this version does not know), get their own
message. Rows without a checksum (written before checksums existed, or with the checksum erased
to slip an edit past `verify`) are never served: `get` raises `UnverifiedRecord`, `verify` and
`stats` count them (exit 1), and only `rehash(trust=True)` (`hieramas cache rehash
--trust-unverified`) gives them checksums, for a file the user vouches for.

Exports (`export_jsonl`) carry each row's checksum; `import_jsonl` refuses a line whose checksum
does not match its fields (an edited answer), a line without one unless `trust_unverified`, and
any usage or cost that is not a finite number within `MAX_TOKENS` / `MAX_COST_USD`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import check_regular_file
from hieramas_gnn.llm.types import LLMRecord, LLMRequest

MODES = ("rw", "replay", "off")
# Providers whose answer depends on the call metadata (they read it instead of the prompt).
OFFLINE_PROVIDERS = ("replay", "sim")
_COLUMNS = ("key", "model", "text", "prompt_tokens", "completion_tokens", "cost_usd",
            "latency_ms", "created_at", "request")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,              -- sha256 hex of the canonical request
    model TEXT NOT NULL,               -- litellm model string
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms REAL NOT NULL,
    created_at REAL NOT NULL,
    request TEXT NOT NULL,             -- the canonical request JSON (no credentials)
    checksum TEXT                      -- sha256 of the fields above (`row_checksum`)
) WITHOUT ROWID;
"""
_SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA_VERSION = 1
"""`PRAGMA user_version` of the caches this version writes (0: a cache from before it was set)."""
MAX_TOKENS = 100_000_000
"""Most prompt or completion tokens one imported record may claim."""
MAX_COST_USD = 1_000_000.0
"""Most dollars one imported record may claim."""


class CacheDamaged(UserError):
    """The cache file is corrupt, truncated, or not a rollout cache at all."""


class UnverifiedRecord(UserError):
    """A record without a checksum: never served as an answer (see the module docstring)."""


def row_checksum(row: tuple) -> str:
    """sha256 of a row's `_COLUMNS` values (canonical JSON): any changed byte changes it."""
    return hashlib.sha256(canonical_json(list(row)).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    """What `RolloutCache.verify` found (`hieramas cache verify`)."""

    path: str
    records: int
    ok: int
    unverified: int  # rows written before checksums existed
    bad: list[str]  # keys whose checksum or key does not match
    sqlite_integrity: str

    @property
    def clean(self) -> bool:
        """No corrupt and no unverified record (an unverified one is never served), SQLite intact."""
        return not self.bad and not self.unverified and self.sqlite_integrity == "ok"



def canonical_request(request: LLMRequest, litellm_model: str,
                      provider_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields that define an answer; `request_key` hashes their canonical JSON.

    For the offline providers the call metadata and the pool's `extra.litellm_params` (e.g. an
    inline `sim_model`) define the answer too, so they are part of it; for real providers they
    are not (they may hold headers).
    """
    body: dict[str, Any] = {
        "model": litellm_model,
        "messages": [dict(m) for m in request.messages],
        "temperature": float(request.temperature),
        "max_tokens": request.max_tokens,
        "params": dict(request.params),
        "sample_index": int(request.sample_index),
        "prompt_version": request.prompt_version,
    }
    if litellm_model.split("/", 1)[0] in OFFLINE_PROVIDERS:
        body["metadata"] = dict(request.metadata)
        if provider_params:
            body["provider_params"] = dict(provider_params)
    return body


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, unicode kept: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(request: LLMRequest, litellm_model: str,
                provider_params: dict[str, Any] | None = None) -> str:
    """sha256 hex of the canonical request."""
    body = canonical_json(canonical_request(request, litellm_model, provider_params))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Totals of a cache file (what `hieramas cache stats` prints)."""

    path: str
    records: int
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    by_model: dict[str, int]
    size_bytes: int
    corrupt: int = 0  # records whose checksum (or key) does not match: `hieramas cache verify` names them
    unverified: int = 0  # records written before checksums existed


class RolloutCache:
    """`RolloutCache(path, mode="rw")`: get / put records by request key (see module docstring)."""

    def __init__(self, path: str | Path | None, mode: str = "rw", busy_timeout_s: float = 60.0):
        if mode not in MODES:
            raise UserError(f"cache mode {mode!r}: expected one of {', '.join(MODES)}")
        if mode != "off" and path is None:
            raise UserError(f"cache mode {mode!r} needs a path")
        self.mode = mode
        self.path = Path(path) if path is not None else None
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._checksum_col = "checksum"
        if mode == "replay" and not self.path.exists():
            raise UserError(f"replay-only cache {self.path}: file does not exist")
        if mode == "rw":
            self._connection()  # create the file and the schema now

    # -- connection --------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """One connection per process (reopened after a fork), autocommit, WAL."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        assert self.path is not None
        self._check_file()
        if self.mode == "rw":
            self._check_writable()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = None
        try:
            if self.mode == "replay":
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            self._check_schema(conn)
            if self.mode != "replay":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
                conn.executescript(_SCHEMA)
                if "checksum" not in _columns(conn):  # a cache from before checksums: old rows stay unverified
                    conn.execute("ALTER TABLE records ADD COLUMN checksum TEXT")
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._checksum_col = "checksum" if "checksum" in _columns(conn) else "NULL AS checksum"
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise CacheDamaged(f"cache is damaged: {self.path}: {exc} (run `hieramas cache verify`)") from exc
        except BaseException:
            if conn is not None:
                conn.close()  # the last connection out removes the -wal / -shm files it made
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _check_file(self) -> None:
        """Refuse, before SQLite touches it, anything that is not a SQLite file (or empty / absent)."""
        assert self.path is not None

        check_regular_file(self.path, "cache")
        if self.path.is_dir():
            raise CacheDamaged(f"cache is damaged: {self.path} is a directory, not a cache file")
        if self.path.exists():
            with open(self.path, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
            if head and head != _SQLITE_MAGIC:
                raise CacheDamaged(f"cache is damaged: {self.path} is not a SQLite file (refusing to write into it)")

    def _check_writable(self) -> None:
        """A read-only cache (file or folder) opened to write: say so (SQLite's own error reads as damage)."""
        assert self.path is not None
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise UserError(f"cache {self.path} is read-only (no write permission); it is intact: read it with "
                            "--cache-mode replay, or copy it somewhere writable")
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"cache {self.path}: its folder {folder} is read-only (SQLite writes its journal "
                            "beside the file); use --cache-mode replay, or copy the cache somewhere writable")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """An existing database must hold exactly a rollout cache's `records` table, of a schema
        this version knows (a newer one is neither read nor written)."""
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if self.mode == "replay":
                raise CacheDamaged(f"cache is damaged: {self.path} holds no records table")
            return
        if "records" not in tables or not set(_COLUMNS) <= set(_columns(conn)):
            raise CacheDamaged(f"cache is damaged: {self.path} is a SQLite file but not a rollout cache "
                               f"(tables: {', '.join(sorted(tables))}); refusing to write into it")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        unknown = sorted(set(_columns(conn)) - set(_COLUMNS) - {"checksum"})
        if version > SCHEMA_VERSION or unknown:
            what = f"cache schema {version}" if version > SCHEMA_VERSION else f"columns {', '.join(unknown)}"
            raise UserError(f"cache {self.path} was written by a newer hieramas_gnn ({what}; this version knows "
                            f"schema {SCHEMA_VERSION}); refusing to read or write it: upgrade hieramas_gnn, or use "
                            "another cache file")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> "RolloutCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records -----------------------------------------------------------------------------
    def get(self, key: str, model_name: str = "") -> LLMRecord | None:
        """The stored record for `key` (as a cache hit, model named `model_name`), or None."""
        if self.mode == "off":
            return None
        with self._lock:
            row = self._query(f"SELECT {', '.join(_COLUMNS)}, {self._checksum_col} FROM records WHERE key = ?",
                              (key,)).fetchone()
        if row is None:
            return None
        if row[-1] is None:
            raise UnverifiedRecord(f"cache {self.path}: record {key[:16]}... has no checksum, so it is not served "
                                   "(`hieramas cache verify` counts these; `hieramas cache rehash --trust-unverified` "
                                   "adds checksums to a cache you vouch for)")
        if not _row_ok(row):
            raise CacheDamaged(f"cache is damaged: {self.path}: record {key[:16]}... fails its checksum "
                               "(run `hieramas cache verify`)")
        _, litellm_model, text, pt, ct, cost, latency, created, _, _ = row
        return LLMRecord(key=key, model=model_name or litellm_model, text=text, prompt_tokens=pt,
                         completion_tokens=ct, cost_usd=cost, latency_ms=latency, cache_hit=True,
                         created_at=created, litellm_model=litellm_model)

    def put(self, record: LLMRecord, request_json: str) -> bool:
        """Store a completed call (committed at once); False when the key was already there."""
        if self.mode != "rw":
            return False
        row = (record.key, record.litellm_model or record.model, record.text, record.prompt_tokens,
               record.completion_tokens, record.cost_usd, record.latency_ms, record.created_at,
               request_json)
        with self._lock:
            cur = self._query(f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}, checksum) "
                              "VALUES (?,?,?,?,?,?,?,?,?,?)", (*row, row_checksum(row)))
        return cur.rowcount == 1

    def _query(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        """Execute on this process's connection; SQLite corruption becomes `CacheDamaged`."""
        try:
            return self._connection().execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise CacheDamaged(f"cache is damaged: {self.path}: {exc} (run `hieramas cache verify`)") from exc

    def verify(self) -> VerifyReport:
        """Check SQLite's integrity and every row's checksum and key (reads only)."""
        with self._lock:
            integrity = "; ".join(r for (r,) in self._query("PRAGMA integrity_check").fetchall())
            ok = unverified = 0
            bad: list[str] = []
            for row in self._query(f"SELECT {', '.join(_COLUMNS)}, {self._checksum_col} FROM records ORDER BY key"):
                if row[-1] is None and _key_ok(row):
                    unverified += 1
                elif _row_ok(row):
                    ok += 1
                else:
                    bad.append(str(row[0]))
        return VerifyReport(str(self.path), ok + unverified + len(bad), ok, unverified, bad, integrity)

    def __contains__(self, key: str) -> bool:
        if self.mode == "off":
            return False
        with self._lock:
            return self._query("SELECT 1 FROM records WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        if self.mode == "off":
            return 0
        with self._lock:
            return self._query("SELECT COUNT(*) FROM records").fetchone()[0]

    def keys(self) -> set[str]:
        """All stored keys (for comparing caches)."""
        if self.mode == "off":
            return set()
        with self._lock:
            return {k for (k,) in self._query("SELECT key FROM records")}

    # -- sharing -----------------------------------------------------------------------------
    def export_jsonl(self, out: str | Path) -> int:
        """Write every record as one JSON object per line (sorted by key); returns the count."""
        n = 0
        rows = self._rows()  # read (and check) everything before the output file is created
        out = Path(out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # then renamed: a kill leaves no half file
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(canonical_json({**dict(zip(_COLUMNS, row[:-1])), "checksum": row[-1]}) + "\n")
                    n += 1
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return n

    def _rows(self) -> Iterator[tuple]:
        if self.mode == "off":
            return iter(())
        with self._lock:
            rows = self._query(f"SELECT {', '.join(_COLUMNS)}, {self._checksum_col} FROM records ORDER BY key").fetchall()
        for row in rows:
            if row[-1] is None:
                raise UnverifiedRecord(f"cache {self.path}: record {row[0]} has no checksum; not exported "
                                       "(`hieramas cache rehash --trust-unverified` if you vouch for the file)")
            if not _row_ok(row):
                raise CacheDamaged(f"cache is damaged: {self.path}: record {row[0]} fails its checksum")
        return iter(rows)

    def import_jsonl(self, src: str | Path, batch: int = 5000, trust_unverified: bool = False) -> tuple[int, int]:
        """Add the records of a jsonl export; returns (added, already present)."""
        if self.mode != "rw":
            raise UserError(f"cache {self.path}: import needs mode rw (is {self.mode})")
        rows = list(_read_jsonl(Path(src), trust_unverified))
        before = len(self)
        rows = [(*row, row_checksum(row)) for row in rows]
        sql = f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}, checksum) VALUES (?,?,?,?,?,?,?,?,?,?)"
        with self._lock:
            conn = self._connection()
            for start in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, rows[start:start + batch])
                conn.execute("COMMIT")
        added = len(self) - before
        return added, len(rows) - added

    def rehash(self, trust: bool = False) -> int:
        """Give every row without a checksum (and whose key is the sha256 of its request) its
        checksum; returns how many. Only with `trust`: it vouches for rows nothing can verify."""
        if not trust:
            raise UserError("cache rehash: adds checksums to records nothing can verify (someone may have edited "
                            "them); run it only on a cache you vouch for, with --trust-unverified")
        if self.mode != "rw":
            raise UserError(f"cache {self.path}: rehash needs mode rw (is {self.mode})")
        with self._lock:
            rows = self._query(f"SELECT {', '.join(_COLUMNS)}, checksum FROM records WHERE checksum IS NULL").fetchall()
            fixed = [(row_checksum(tuple(r[:-1])), r[0]) for r in rows if _key_ok(r)]
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("UPDATE records SET checksum = ? WHERE key = ? AND checksum IS NULL", fixed)
            conn.execute("COMMIT")
        return len(fixed)

    def stats(self) -> CacheStats:
        """Record count, total cost and tokens, records per model, file size, and how many records
        fail their checksum: one pass over the rows (sha256 of each), SQLite's quick check first."""
        if self.mode == "off":
            return CacheStats("", 0, 0.0, 0, 0, {}, 0)
        n, cost, pt, ct, corrupt, unverified = 0, 0.0, 0, 0, 0, 0
        by_model: dict[str, int] = {}
        with self._lock:
            check = "; ".join(r for (r,) in self._query("PRAGMA quick_check").fetchall())
            if check != "ok":
                raise CacheDamaged(f"cache is damaged: {self.path}: {check[:300]} (run `hieramas cache verify`)")
            for row in self._query(f"SELECT {', '.join(_COLUMNS)}, {self._checksum_col} FROM records ORDER BY model"):
                n += 1
                by_model[row[1]] = by_model.get(row[1], 0) + 1
                usage_ok = all(isinstance(v, int | float) for v in row[3:6])  # else: corrupt, counts 0
                pt, ct, cost = (pt + row[3], ct + row[4], cost + row[5]) if usage_ok else (pt, ct, cost)
                if row[-1] is None and _key_ok(row):
                    unverified += 1
                elif not _row_ok(row):
                    corrupt += 1
        size = sum(p.stat().st_size for p in _db_files(self.path))
        return CacheStats(str(self.path), n, float(cost), int(pt), int(ct), by_model, size, corrupt, unverified)


def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("PRAGMA table_info(records)")]


def _key_ok(row: tuple) -> bool:
    return isinstance(row[8], str) and hashlib.sha256(row[8].encode()).hexdigest() == row[0]


def _row_ok(row: tuple) -> bool:
    """Key = sha256(request), and the checksum matches (a NULL checksum is a pre-checksum row)."""
    return _key_ok(row) and (row[-1] is None or row[-1] == row_checksum(tuple(row[:-1])))


def _db_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def read_export(path: str | Path, trust_unverified: bool = False) -> list[tuple]:
    """Every row of a cache export, validated (UserError naming file and line); writes nothing."""
    return list(_read_jsonl(Path(path), trust_unverified))


def _read_jsonl(path: Path, trust_unverified: bool = False) -> Iterator[tuple]:
    """Rows of a cache export, validated; a bad line is a UserError naming file and line."""
    check_regular_file(path, "cache import")
    if not path.is_file():
        raise UserError(f"cache import: no such file {path}")
    with open(path, encoding="utf-8", errors="strict") as fh:
        for lineno, line in enumerate(_lines(fh, path), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                missing = [c for c in _COLUMNS if c not in obj]
                if missing:
                    raise ValueError(f"missing field {missing[0]!r}")
                digest = hashlib.sha256(str(obj["request"]).encode()).hexdigest()
                if digest != obj["key"]:
                    raise ValueError("key is not the sha256 of the request (edited or corrupt line)")
                if not all(isinstance(obj[c], str) for c in ("key", "model", "text", "request")):
                    raise ValueError("key, model, text and request must be strings")
                for col in ("prompt_tokens", "completion_tokens"):
                    if isinstance(obj[col], bool) or not isinstance(obj[col], int) or not 0 <= obj[col] <= MAX_TOKENS:
                        raise ValueError(f"{col} must be an integer in 0..{MAX_TOKENS:,}, got {obj[col]!r}"[:200])
                for col in ("cost_usd", "latency_ms", "created_at"):
                    value = obj[col]
                    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                            or value < 0 or (col == "cost_usd" and value > MAX_COST_USD)):
                        raise ValueError(f"{col} must be a finite number >= 0"
                                         f"{f' and at most {MAX_COST_USD:g}' if col == 'cost_usd' else ''}, got {value!r}"[:200])
                row = tuple(obj[c] for c in _COLUMNS)
                if obj.get("checksum") is None and not trust_unverified:
                    raise ValueError("no checksum (an export from before checksums, or an edited line); re-export "
                                     "it with this version, or import with --trust-unverified if you vouch for it")
                if obj.get("checksum") is not None and obj["checksum"] != row_checksum(row):
                    raise ValueError("the checksum does not match the record (an edited answer, usage or cost)")
                yield row
            except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
                raise UserError(f"cache import {path}:{lineno}: {exc}") from None


def _lines(fh: Any, path: Path) -> Iterator[str]:
    try:
        yield from fh
    except UnicodeDecodeError:
        raise UserError(f"cache import {path}: not UTF-8 text") from None
