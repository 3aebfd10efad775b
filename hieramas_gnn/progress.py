"""Progress on the console: a bar for long work, one line per finished phase, all on stderr.

Every command whose work can take more than a few seconds reports through this module, so the
standard output keeps only results (tables, JSON, paths) and a pipe or a redirect of it stays
clean.

- `bar(total, desc)`: a context manager with `update(n=1)` and `set_postfix(**shown)`. On a
  terminal it is a tqdm bar. Elsewhere (a log file, CI, a test capturing stderr) it prints plain
  lines instead of carriage-return redraws: at most one `desc: 120/600 (20%), 14s` line every
  `LINE_EVERY_S` seconds, then the final count with the elapsed time.
- `phase(text)`: one summary line (`hieramas: <text>`) when a phase ends.
- Quiet: `hieramas --quiet` (`set_quiet(True)`) or the environment variable `HIERAMAS_QUIET=1`
  silences both; errors and warnings are still printed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

LINE_EVERY_S = 10.0
"""Seconds between two plain progress lines (not on a terminal)."""

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) progress bars and phase lines in this process."""
    global _quiet
    _quiet = bool(quiet)


def quiet() -> bool:
    """Whether progress is silenced (`--quiet` or `HIERAMAS_QUIET`)."""
    return _quiet or os.environ.get("HIERAMAS_QUIET", "").strip().lower() in ("1", "true", "yes")


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def phase(text: str) -> None:
    """One line on stderr saying what a phase did (silent when quiet)."""
    if not quiet():
        print(f"hieramas: {text}", file=sys.stderr, flush=True)


class _Lines:
    """The plain-line progress of a non-terminal stderr (module docstring)."""

    def __init__(self, total: int | None, desc: str, initial: int = 0) -> None:
        self.total, self.desc, self.n = total, desc, initial
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def _say(self, final: bool = False) -> None:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total and 0 < self.n < self.total else ""
        took = time.monotonic() - self.start
        when = f", {took:.0f}s" if self.n or final else ""
        extra = f" {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {count}{pct}{when}{extra}", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= LINE_EVERY_S and (self.total is None or self.n < self.total):
            self.last = now
            self._say()

    def set_postfix(self, shown: dict[str, Any] | None = None, refresh: bool = False, **more: Any) -> None:
        items = {**(shown or {}), **more}
        self.postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        self._say(final=True)


class _Silent:
    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class bar:
    """A progress bar over `total` items (module docstring); use as a context manager or call
    `close()`. `enabled=False` (e.g. `tracking.progress: false`) makes it silent too."""

    def __init__(self, total: int | None, desc: str, initial: int = 0, enabled: bool = True) -> None:
        if quiet() or not enabled:
            self._impl: Any = _Silent()
        elif _is_terminal():
            from tqdm.auto import tqdm

            self._impl = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True,
                              leave=True)
        else:
            self._impl = _Lines(total, desc, initial)
        self._closed = False

    @property
    def n(self) -> int:
        return int(self._impl.n)

    def update(self, n: int = 1) -> None:
        self._impl.update(n)

    def set_postfix(self, shown: dict[str, Any] | None = None, **more: Any) -> None:
        self._impl.set_postfix({**(shown or {}), **more}, refresh=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._impl.close()

    def __enter__(self) -> bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __call__(self, *_: Any) -> None:
        """`on_done` callback form: one item finished."""
        self.update(1)
