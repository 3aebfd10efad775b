"""Checks run before a command does any work, so a bad output path never costs a finished run.

`check_out_file(path, flag)`: the path a command will write (a JSON file, a summary) must not be
a directory, nor sit under a file; its parent folder is created later by the writer.
`budget_stop(client, n, ...)`: the message printed when a `--budget` stopped a run (exit code 3),
so an accuracy computed over refused calls is never reported as a measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError

BUDGET_EXIT = 3  # as `hieramas collect`: the run stopped at the budget; completed calls are cached


def check_out_file(path: str | None, flag: str) -> None:
    """UserError when `path` cannot become a file (a directory, or a file in its way)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
            break


def check_positive(value: int | None, flag: str) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise UserError(f"{flag} must be at least 1, got {value}")


def budget_stopped(client: Any) -> bool:
    """Whether the client refused calls because of its spend cap."""
    return getattr(client.stats, "refused", 0) > 0


def budget_message(client: Any, budget: float | None, n_failed: int, n: int) -> str:
    return (f"budget ${budget} reached: {client.stats.refused} calls refused, {n_failed} of {n} episodes did "
            f"not complete (counted as failed, so the accuracies above are not a measurement). "
            f"Raise --budget and re-run: completed calls are cached.")
