"""What runs inside a Ray worker: one `ShardWorker` actor runs shards of jobs with the executor.

A shard is a list of (job index, job). A worker runs several shards at once with
`mas.executor.run_many`, all behind its one `LLMClient` (its share of the rate limits, see
`share_limits`) and one bound on calls in flight, and *streams* each shard's events back
to the driver as they happen (a Ray streaming generator): each batch holds the rollout records
the worker paid for (`("record", record, request_json)`, in the order the calls completed),
the traces of finished jobs (`("trace", index, trace)`, after the records their calls made) and
a snapshot of the worker client's counters. The driver writes the records to the cache.

`WorkerCache` is the worker's view of the cache: lookups go to the driver's node
(`DriverService.get`, awaited before each call so the event loop never blocks), records it
produces are kept locally (later identical requests on the worker are hits, as in a local run)
and queued for the driver; it never touches the SQLite file. `WorkerClient` is the project's
`LLMClient` with two changes: that lookup, and the budget rule applied against the driver's
one ledger instead of a per-process counter.

These classes are plain Python; `runner.py` wraps `ShardWorker` with `ray.remote` when it
starts workers, so importing this module needs no Ray.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
from dataclasses import asdict, replace
from typing import Any, Callable

from hieramas_gnn.llm.client import ClientConfig, LLMClient
from hieramas_gnn.llm.pool import ModelSpec, Pool
from hieramas_gnn.llm.types import BudgetExceeded, LLMRecord, LLMRequest
from hieramas_gnn.mas.executor import run_many

# Environment read by the offline backends and litellm; forwarded to workers.
FORWARDED_ENV_PREFIXES = ("HIERAMAS_", "LITELLM_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")


def worker_seed(seed: int, index: int) -> int:
    """The backoff-jitter seed of worker `index` of a run seeded `seed` (one of its own)."""
    return seed * 1000 + index


def share_limits(config: ClientConfig, pool: Pool, workers: int) -> tuple[ClientConfig, Pool]:
    """One worker's share of the client limits: concurrency and requests per minute divided by
    `workers` (floor, at least 1 call in flight), the pool's per-model `extra.rpm` too. The
    budget is not split: all workers reserve from one ledger."""
    cfg = replace(config, max_concurrency=max(1, config.max_concurrency // workers),
                  per_model_concurrency=max(1, config.per_model_concurrency // workers),
                  rpm=None if config.rpm is None else config.rpm / workers)

    def scaled(spec: ModelSpec) -> ModelSpec:
        rpm = spec.extra.get("rpm")
        return spec if not rpm else replace(spec, extra={**spec.extra, "rpm": float(rpm) / workers})

    return cfg, Pool(pool.name, tuple(scaled(s) for s in pool.models))


def split_in_flight(max_in_flight: int, workers: int) -> int:
    """Calls in flight per worker so that all workers together stay within `max_in_flight`."""
    return max(1, max_in_flight // workers)


def shard_plan(n_keys: int, workers: int, per_worker_in_flight: int) -> tuple[int, int]:
    """(keys per shard, shards in flight per worker).

    A worker runs several shards at once under one bound on calls in flight, so it has about
    2 x its in-flight share of queries active (what `run_many` keeps locally) and never idles
    at a shard's tail. Shards are about 1/8 of a worker's keys (load balance), at most 2 x the
    in-flight share.
    """
    size = max(1, min(math.ceil(n_keys / (workers * 8)), 2 * per_worker_in_flight))
    depth = max(2, math.ceil(2 * per_worker_in_flight / size))
    return size, depth


def make_shards(keys: list[str], size: int) -> list[list[int]]:
    """Job indices grouped so that all jobs with one key (a question) land in one shard:
    consecutive groups of `size` keys in first-seen order."""
    order: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    groups = list(order.values())
    return [[i for g in groups[s:s + size] for i in g] for s in range(0, len(groups), size)]


# The event queue of the shard a call belongs to: set by `run_shard`, inherited by its tasks.
_SHARD_OUTBOX: contextvars.ContextVar[asyncio.Queue] = contextvars.ContextVar("shard_outbox")


class WorkerCache:
    """The cache as a worker sees it (module docstring). `mode` is the driver cache's mode.
    One per worker (shared by its shards); a record goes to the stream of the shard whose
    call produced it."""

    def __init__(self, mode: str, label: str | None, service: Any) -> None:
        self.mode = mode
        self.path = label
        self._service = service
        self._local: dict[str, LLMRecord] = {}

    async def prefetch(self, key: str) -> None:
        """Fetch `key` from the driver's cache into the local view (no-op when already here)."""
        if self.mode == "off" or key in self._local:
            return
        record = await self._service.get.remote(key)
        if record is not None:
            self._local[key] = record

    def get(self, key: str, model_name: str = "") -> LLMRecord | None:
        record = self._local.get(key)
        if record is None:
            return None
        return replace(record, cache_hit=True, model=model_name or record.model)

    def put(self, record: LLMRecord, request_json: str) -> bool:
        """Keep the record and queue it for the driver (the writer); False if already here."""
        if self.mode != "rw" or record.key in self._local:
            return False
        self._local[record.key] = record
        _SHARD_OUTBOX.get().put_nowait(("record", record, request_json))
        return True


class _Bounded:
    """A shard's client: the worker-wide bound on calls in flight around `inner`."""

    def __init__(self, inner: Any, sem: asyncio.Semaphore) -> None:
        self.inner, self.sem = inner, sem

    async def complete(self, request: LLMRequest) -> LLMRecord:
        async with self.sem:
            return await self.inner.complete(request)


class WorkerClient(LLMClient):
    """`LLMClient` whose cache is a `WorkerCache` and whose budget is the driver's ledger."""

    def __init__(self, pool: Pool, cache: WorkerCache, config: ClientConfig, service: Any,
                 worker_id: str, *, backend: Any = None, seed: int = 0) -> None:
        super().__init__(pool, cache, config, backend=backend, seed=seed)  # type: ignore[arg-type]
        self._service = service
        self._worker_id = worker_id

    async def complete(self, request: LLMRequest, *, key: str | None = None) -> LLMRecord:
        """`LLMClient.complete` after fetching the request's record from the driver's cache
        (`lookup`, inherited, reads only the local view; a miss there comes here with its key)."""
        key = key if key is not None or self.cache.mode == "off" else self.request_key(request)
        if key is not None:  # the very key `LLMClient.complete` will look up
            await self.cache.prefetch(key)  # type: ignore[attr-defined]
        return await super().complete(request, key=key)

    async def _reserve(self, spec: ModelSpec, request: LLMRequest) -> float:
        if self.config.budget_usd is None:
            return 0.0
        estimate = self.estimate_cost(request)
        ok, why = await self._service.reserve.remote(self._worker_id, estimate)
        if not ok:
            self.stats.refused += 1
            raise BudgetExceeded(f"{spec.name}: {why}")
        self.stats.reserved_usd += estimate
        return estimate

    async def _settle(self, estimate: float, cost: float) -> None:
        self.stats.spent_usd += cost
        if self.config.budget_usd is None:
            return
        self.stats.reserved_usd -= estimate
        await self._service.settle.remote(self._worker_id, estimate, cost)


class ShardWorker:
    """One Ray worker (an async actor): runs shards, streams records and traces (module docstring).

    One client (its share of the limits), one cache view and one bound on calls in flight
    (`max_in_flight`) serve every shard the driver has given it at a time."""

    def __init__(self, worker_id: str, pool: Pool, config: ClientConfig, service: Any,
                 cache_mode: str, cache_label: str | None, max_in_flight: int,
                 env: dict[str, str], *, backend: Any = None, seed: int = 0) -> None:
        os.environ.update(env)
        self.worker_id = worker_id
        self.cache = WorkerCache(cache_mode, cache_label, service)
        self.client = WorkerClient(pool, self.cache, config, service, worker_id, backend=backend, seed=seed)
        self.max_in_flight = max_in_flight
        self._sem: asyncio.Semaphore | None = None

    def pid(self) -> int:
        return os.getpid()

    async def run_shard(self, jobs: list[tuple[int, Any]], wrap: Callable[[Any], Any] | None = None):
        """Run the jobs; yield event batches `{"events": [...], "stats": {...}}` as they happen
        (`stats`: this worker's client counters so far, all shards)."""
        if self._sem is None:  # created on the actor's event loop
            self._sem = asyncio.Semaphore(self.max_in_flight)
        outbox: asyncio.Queue = asyncio.Queue()
        _SHARD_OUTBOX.set(outbox)  # tasks created below inherit it
        caller = _Bounded(wrap(self.client) if wrap is not None else self.client, self._sem)

        def indexed(i: int, job: Any) -> Callable[[Any], Any]:
            async def run(c: Any) -> Any:
                trace = await job(c)
                outbox.put_nowait(("trace", i, trace))
                return trace
            return run

        work = asyncio.ensure_future(run_many([indexed(i, j) for i, j in jobs], caller,
                                              max_in_flight=self.max_in_flight))
        while True:
            getter = asyncio.ensure_future(outbox.get())
            await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            events = [getter.result()] if getter.done() else []
            if not getter.done():
                getter.cancel()
            while not outbox.empty():
                events.append(outbox.get_nowait())
            if events:
                yield {"events": events, "stats": asdict(self.client.stats)}
            if work.done() and outbox.empty():
                work.result()  # a bug or a UserError (bad input) propagates to the driver
                return


def forwarded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The driver's settings the workers need (offline backends, litellm, HF)."""
    env = dict(os.environ if environ is None else environ)
    return {k: v for k, v in env.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
