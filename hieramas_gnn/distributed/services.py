"""The driver-side service of a Ray run: cache lookups and the one budget ledger.

`DriverService` is a plain class (tested without Ray); the runner starts it as one async Ray
actor pinned to the driver's node, so the SQLite file it reads is a local file there. It never
writes the cache: the driver is the single writer (docs/DISTRIBUTED.md says why). It answers:

- `get(key)`: the stored record (or None). Workers look a key up before each call, so a call
  the driver has committed (by any worker, in any earlier attempt of a shard) is a free hit.
- `reserve(worker, estimate)` / `settle(worker, estimate, cost)`: the budget rule of the local
  client (`LLMClient._reserve`) applied to *all* workers together: a call reserves an upper
  bound of its cost before it is sent and is refused when spent + bound would pass the cap;
  when only calls in flight stand in the way, it waits for them to settle.
- `write_off(worker)`: a worker died. Its open reservations may have been billed by the
  provider, so they are counted as spent (`lost_usd`) and never released: the cap holds even
  for calls whose answer nobody received.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hieramas_gnn.llm.cache import RolloutCache


@dataclass
class LedgerTotals:
    """The ledger's state: spent (settled calls), reserved (in flight), lost (written off)."""

    budget_usd: float | None
    spent_usd: float
    reserved_usd: float
    lost_usd: float
    refused: int

    @property
    def committed_usd(self) -> float:
        """Money that may have been paid: settled plus written-off reservations."""
        return self.spent_usd + self.lost_usd

    @property
    def left_usd(self) -> float | None:
        if self.budget_usd is None:
            return None
        return max(0.0, self.budget_usd - self.committed_usd - self.reserved_usd)


class DriverService:
    """Cache reads and the shared budget ledger (see the module docstring)."""

    def __init__(self, cache_path: str | None, cache_mode: str, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd
        # Read-only view: the driver's own connection is the only writer. The file may not exist
        # yet (the driver creates it on its first write): the view is opened on first use then.
        self._path = cache_path if cache_mode != "off" and cache_path else None
        self._cache = RolloutCache(cache_path, "replay") if self._path and Path(self._path).exists() else None
        self._spent = 0.0
        self._lost = 0.0
        self._refused = 0
        self._reserved: dict[str, float] = defaultdict(float)  # worker id -> open reservations
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created inside the actor's event loop
            self._cond = asyncio.Condition()
        return self._cond

    async def get(self, key: str) -> Any:
        """The stored LLMRecord for `key`, or None."""
        if self._cache is None and self._path and Path(self._path).exists():
            self._cache = RolloutCache(self._path, "replay")
        return self._cache.get(key) if self._cache is not None else None

    async def reserve(self, worker: str, estimate: float) -> tuple[bool, str]:
        """(True, "") once `estimate` is reserved for `worker`; (False, why) when refused."""
        if self.budget_usd is None:
            return True, ""
        cond = self._condition()
        async with cond:
            while self._committed() + self._open() + estimate > self.budget_usd:
                if self._committed() + estimate > self.budget_usd or self._open() <= 0:
                    self._refused += 1
                    return False, (f"budget ${self.budget_usd:.4f} (all workers): call (up to "
                                   f"${estimate:.6f}) refused; ${self._committed():.6f} committed")
                await cond.wait()
            self._reserved[worker] += estimate
        return True, ""

    async def settle(self, worker: str, estimate: float, cost: float) -> None:
        """Replace a reservation of `worker` by what the call cost; wake waiting calls."""
        cond = self._condition()
        async with cond:
            self._spent += cost
            if self.budget_usd is not None:
                self._reserved[worker] -= estimate
            cond.notify_all()

    async def write_off(self, worker: str) -> float:
        """Count a dead worker's open reservations as spent; returns the amount."""
        cond = self._condition()
        async with cond:
            lost = max(0.0, self._reserved.pop(worker, 0.0))
            self._lost += lost
            cond.notify_all()
        return lost

    async def totals(self) -> LedgerTotals:
        return LedgerTotals(self.budget_usd, self._spent, self._open(), self._lost, self._refused)

    def _committed(self) -> float:
        return self._spent + self._lost

    def _open(self) -> float:
        return sum(v for v in self._reserved.values() if v > 0)
