"""Where the project's files live: the committed `data/` folder and the optional `../shared/data`.

Both can be overridden by environment variables so an installed package or a CI job can point
elsewhere: `HIERAMAS_DATA` (project data: pools, calibration) and `HIERAMAS_SHARED_DATA` (the
read-only real benchmark sets and outcome tables).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The project's committed data folder (pools, fitted simulator figures, sample sets)."""
    return Path(os.environ.get("HIERAMAS_DATA", REPO_ROOT / "data"))


def shared_data_dir() -> Path:
    """`../shared/data` beside the checkout (may not exist on a user's machine)."""
    return Path(os.environ.get("HIERAMAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` so that a reader, or a run resumed after a SIGKILL, sees the
    old content or the new one, never a truncated file: a temp file beside it, then `os.replace`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ensure_offline_defaults() -> None:
    """Default the environment to offline operation before litellm / HF / wandb are imported.

    Only sets variables that the user has not set, so a user with keys and network keeps control.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
