"""The rollout cache detects corruption and never writes into a file that is not a rollout cache."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hieramas_gnn.cli import main as cli
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import CacheDamaged, RolloutCache
from hieramas_gnn.llm.types import LLMRecord

REQUEST = '{"model":"m","q":1}'
KEY = hashlib.sha256(REQUEST.encode()).hexdigest()


def _cache(path: Path, text: str = "the answer is 42") -> Path:
    with RolloutCache(path, "rw") as cache:
        cache.put(LLMRecord(key=KEY, model="m", text=text, prompt_tokens=3, completion_tokens=4, cost_usd=0.001,
                            latency_ms=5.0, cache_hit=False, created_at=1.0), REQUEST)
    return path


def _flip_answer(path: Path) -> None:
    """Change one character of the stored answer behind the cache's back (a bit flip)."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET text = 'the answer is 43'")


def test_a_stored_record_reads_back(tmp_path):
    with RolloutCache(_cache(tmp_path / "c.sqlite"), "replay") as cache:
        assert cache.get(KEY).text == "the answer is 42"


def test_a_flipped_answer_is_refused_on_read(tmp_path):
    path = _cache(tmp_path / "c.sqlite")
    _flip_answer(path)
    with RolloutCache(path, "replay") as cache, pytest.raises(CacheDamaged, match="cache is damaged: .*checksum"):
        cache.get(KEY)


def test_cache_verify_finds_the_flipped_record(tmp_path, capsys):
    path = _cache(tmp_path / "c.sqlite")
    assert cli(["cache", "verify", "--cache", str(path)]) == 0
    _flip_answer(path)
    assert cli(["cache", "verify", "--cache", str(path)]) == 1
    assert f"corrupt: {KEY}" in capsys.readouterr().out


def test_cache_verify_reports_rows_without_checksum_as_unverified_and_fails(tmp_path, capsys):
    path = _cache(tmp_path / "c.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET checksum = NULL")
    assert cli(["cache", "verify", "--cache", str(path)]) == 1  # an erased checksum is no way around verify
    captured = capsys.readouterr()
    assert "1 unverified" in captured.out and "never served" in captured.err


def test_an_old_cache_without_the_checksum_column_opens_and_gains_it(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE records (key TEXT PRIMARY KEY, model TEXT NOT NULL, text TEXT NOT NULL, "
                     "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, "
                     "latency_ms REAL NOT NULL, created_at REAL NOT NULL, request TEXT NOT NULL) WITHOUT ROWID")
        conn.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)", (KEY, "m", "old", 1, 1, 0.0, 1.0, 0.0, REQUEST))
    with RolloutCache(path, "rw") as cache:
        assert cache.verify().unverified == 1
        with pytest.raises(UserError, match="no checksum, so it is not served"):
            cache.get(KEY)
        assert cache.rehash(trust=True) == 1
        assert cache.get(KEY).text == "old" and cache.verify().clean


@pytest.mark.parametrize("damage", ["truncated", "flipped_header", "flipped_page", "zeros", "text_file", "json_file"])
def test_a_damaged_file_gives_cache_is_damaged_and_is_not_written(tmp_path, damage, capsys):
    path = _cache(tmp_path / "c.sqlite")
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2 + 7]
    elif damage == "flipped_header":
        data[0] ^= 0xFF
    elif damage == "flipped_page":
        for i in range(100, min(len(data), 4096 + 200)):
            data[i] ^= 0x5A
    elif damage == "zeros":
        data = bytearray(len(data))
    elif damage == "text_file":
        data = bytearray(b"hello, not a cache\n" * 100)
    else:
        data = bytearray(b'{"a": 1}\n')
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    for argv in (["cache", "stats", "--cache", str(path)], ["cache", "verify", "--cache", str(path)],
                 ["cache", "import", "--cache", str(path), "--src", str(tmp_path / "none.jsonl")]):
        code = cli(argv)
        err = capsys.readouterr().err
        assert code in (1, 2) and "Traceback" not in err
        assert code == 1 or "cache is damaged" in err or "no such file" in err
    assert path.read_bytes() == before


def test_a_directory_as_cache_is_named(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert cli(["cache", "stats", "--cache", str(tmp_path / "d")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cache_stats_on_a_foreign_sqlite_file_writes_nothing(tmp_path, capsys):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
    before = path.read_bytes()
    for mode in ("stats", "verify", "export"):
        argv = ["cache", mode, "--cache", str(path)] + (["--out", str(tmp_path / "x.jsonl")] if mode == "export" else [])
        assert cli(argv) == 2
        assert "not a rollout cache" in capsys.readouterr().err
    with pytest.raises(CacheDamaged, match="not a rollout cache"):
        RolloutCache(path, "rw")
    assert path.read_bytes() == before
    assert not (tmp_path / "x.jsonl").exists()
    with sqlite3.connect(path) as conn:
        assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_a_non_sqlite_file_is_never_turned_into_a_cache(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("important notes\n")
    with pytest.raises(CacheDamaged, match="not a SQLite file"):
        RolloutCache(path, "rw")
    assert path.read_text() == "important notes\n"


def _flip_byte_in_file(path: Path, needle: bytes) -> None:
    """Flip one bit of the stored answer in the file itself (SQLite's page structure stays valid)."""
    data = bytearray(path.read_bytes())
    at = data.index(needle) + len(needle) - 1
    data[at] ^= 0x01  # '2' -> '3'
    path.write_bytes(bytes(data))


def test_cache_stats_counts_a_record_with_a_flipped_byte_as_corrupt(tmp_path, capsys):
    path = _cache(tmp_path / "c.sqlite")
    assert cli(["cache", "stats", "--cache", str(path)]) == 0
    assert "checksums: 0 corrupt" in capsys.readouterr().out
    _flip_byte_in_file(path, b"the answer is 42")
    assert cli(["cache", "stats", "--cache", str(path)]) == 1
    captured = capsys.readouterr()
    assert "1 records, " in captured.out and "checksums: 1 corrupt" in captured.out
    assert "cache verify" in captured.err


def test_cache_stats_json_reports_corrupt_and_unverified_counts(tmp_path, capsys):
    import json

    path = _cache(tmp_path / "c.sqlite")
    _flip_byte_in_file(path, b"the answer is 42")
    assert cli(["cache", "stats", "--json", "--cache", str(path)]) == 1
    stats = json.loads(capsys.readouterr().out)
    assert (stats["records"], stats["corrupt"], stats["unverified"]) == (1, 1, 0)
