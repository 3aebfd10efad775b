"""Read what an offline wandb run recorded, from its `run-<id>.wandb` file (tests only).

wandb >= 0.19 has no Python reader of its transaction log any more (the Go core writes it), so
this reads the format itself: a 7-byte header (`:W&B`, 0xBEE1, version 0), then LevelDB-log
framing (32 KiB blocks; each chunk: crc32 (4 bytes), length (2, little-endian), type (1: full,
2: first, 3: middle, 4: last)) around serialized `wandb_internal_pb2.Record`s.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
CHUNK_HEAD = 7


def records(path: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a wandb transaction log")
    out, pos, pending = [], HEADER, b""
    while pos + CHUNK_HEAD <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEAD:  # block trailer: skip to the next block
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEAD])
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        body = data[pos + CHUNK_HEAD:pos + CHUNK_HEAD + length]
        pos += CHUNK_HEAD + length
        if kind == 1:
            pending = body
        elif kind == 2:
            pending = body
            continue
        elif kind == 3:
            pending += body
            continue
        elif kind == 4:
            pending += body
        else:
            raise ValueError(f"{path}: unknown chunk type {kind} at {pos}")
        rec = pb.Record()
        rec.ParseFromString(pending)
        out.append(rec)
        pending = b""
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    """The run's name, group, job type, tags, config, history rows and final summary."""

    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def read_run(path: str | Path, wait_s: float = 20.0) -> OfflineRun:
    """An `OfflineRun` from a `.wandb` file (or the one file under a folder). wandb's service
    process writes the file on its own and may still be flushing it when `finish()` has returned
    (seen on a loaded machine): a file without its run record yet is read again for up to `wait_s`."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("*.wandb"))
        if len(found) != 1:
            raise ValueError(f"{path}: expected one .wandb file, found {len(found)}")
        path = found[0]
    deadline = time.monotonic() + wait_s
    while True:
        try:
            run = _read(path)
        except ValueError:  # a header or a record still being written
            if time.monotonic() > deadline:
                raise
        else:
            if run.name or time.monotonic() > deadline:
                return run
        time.sleep(0.2)


def _read(path: Path) -> OfflineRun:
    run = OfflineRun()
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run.name, run.group, run.job_type = rec.run.display_name, rec.run.run_group, rec.run.job_type
            run.tags = list(rec.run.tags)
            for item in rec.run.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in rec.history.item}
            run.history.append(row)
            run.summary.update({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "summary":
            for item in rec.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
    return run
