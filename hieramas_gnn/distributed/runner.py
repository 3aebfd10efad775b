"""`RayRunner`: the `mas.runner.Runner` protocol over Ray workers, and `make_runner`.

    runner = make_runner("ray", ray_address=None, task=task, roleset=roleset, pool=pool,
                         cache_path="runs/cache.sqlite", cache_mode="rw",
                         client_config=ClientConfig(budget_usd=5.0), max_in_flight=32, workers=4)
    traces = runner.run([(design, question), ...])      # in job order, like ExecutorRunner
    traces = runner.run_jobs(jobs, keys=question_ids)   # any executor jobs (baselines, collect)

How a run goes (docs/DISTRIBUTED.md has the why):
1. Jobs are grouped by shard key (the question id), so every request of one question is made
   by one worker (in-flight sharing and `SharedCalls` work as in a local run), and the groups
   are cut into shards (`worker.shard_plan`), handed out round-robin, then to whichever worker
   has room.
2. Each worker (`worker.ShardWorker`, one async actor, `cpus_per_worker` CPUs) runs several
   shards at once with the executor under one client holding its share of the concurrency and
   rpm limits, reserving every call's cost from the one budget ledger (`services.DriverService`).
3. Records stream back as calls complete; the driver is the single writer of the cache (it
   writes each record once, `INSERT OR IGNORE`, and counts any key it sees twice).
4. A worker that dies (killed, OOM, node lost) loses only its calls in flight: the driver writes
   off their reservations (counted as spent), starts a fresh worker and re-queues the shard's
   unfinished jobs, whose completed calls are now cache hits. A shard is retried at most
   `max_shard_retries` times.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hieramas_gnn.distributed.options import EXECUTORS, require_ray
from hieramas_gnn.distributed.services import DriverService
from hieramas_gnn.distributed.worker import (
    ShardWorker,
    forwarded_env,
    make_shards,
    shard_plan,
    share_limits,
    split_in_flight,
    worker_seed,
)
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig, ClientStats, LLMClient
from hieramas_gnn.llm.pool import Pool
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.mas import executor
from hieramas_gnn.mas.design import Design
from hieramas_gnn.mas.runner import ExecutorRunner
from hieramas_gnn.tasks.base import Question


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connect to `address` (None: start a local cluster) unless Ray is already initialised."""
    ray = require_ray()
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=address, num_cpus=num_cpus if address is None else None,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:
            raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster ({exc})") from exc
        except OSError as exc:  # e.g. AF_UNIX socket paths over 107 bytes under a long TMPDIR
            where = address or "a local cluster"
            raise UserError(f"ray executor: cannot start {where} ({exc}); set RAY_TMPDIR to a "
                            f"short folder such as /tmp/ray") from exc
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster ({exc})") from exc
    return ray


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT (or ray://HOST:PORT) nobody answers at: `ray.init` would retry
    for minutes. `auto`, `local` and None are left to Ray."""
    import socket

    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"--ray-address {address}: no Ray cluster answers there ({exc})") from exc


@dataclass
class _Shard:
    indices: list[int]
    attempts: int = 0


@dataclass
class RunReport:
    """What the driver saw in the last `run_jobs`: records written, duplicates, deaths."""

    records_written: int = 0
    duplicate_records: int = 0
    worker_deaths: int = 0
    retried_shards: int = 0
    lost_usd: float = 0.0


@dataclass
class RayRunner:
    """Runs designs (or any executor jobs) on Ray workers; see the module docstring.

    task, roleset:      what `run` builds its `executor.Job`s with.
    pool, client_config: the client every worker builds (its share of the limits).
    backend, seed:      the offline backends' settings of every worker's client, and the run
                        seed each worker's backoff-jitter seed derives from.
    cache_path/mode:    the driver's rollout cache (`rw`: the driver writes; `replay`: misses
                        fail; `off`: none).
    workers:            Ray workers (async actors), each asking `cpus_per_worker` CPUs.
    max_in_flight:      calls in flight over all workers together.
    """

    task: Any
    roleset: Any
    pool: Pool
    client_config: ClientConfig = field(default_factory=ClientConfig)
    backend: BackendSettings = field(default_factory=BackendSettings)
    seed: int = 0
    cache_path: str | None = None
    cache_mode: str = "off"
    workers: int = 2
    max_in_flight: int = 64
    ray_address: str | None = None
    cpus_per_worker: float = 1.0
    max_shard_retries: int = 3
    progress: bool = False
    sample_index: int = 0
    rollouts: int = 0
    report: RunReport = field(default_factory=RunReport)

    def __post_init__(self) -> None:
        if isinstance(self.backend, dict):
            self.backend = BackendSettings.from_dict(self.backend)
        if self.workers < 1:
            raise UserError(f"ray executor: workers must be >= 1, got {self.workers}")
        if self.max_in_flight < 1:
            raise UserError(f"ray executor: max_in_flight must be >= 1, got {self.max_in_flight}")

        self._cache = (RolloutCache(self.cache_path, self.cache_mode)
                       if self.cache_mode != "off" and self.cache_path else None)
        self._ray: Any = None
        self._service: Any = None
        self._actors: list[Any] = []
        self._actor_ids: list[str] = []  # ledger id of each slot's worker (known after it dies)
        self._ids = itertools.count()
        self._totals: Any = None
        self._worker_stats: dict[str, dict[str, Any]] = {}  # worker id -> its client's counters

        self._per_worker = split_in_flight(self.max_in_flight, self.workers)

    # -- the Runner protocol -------------------------------------------------------------------
    def run(self, jobs: Sequence[tuple[Design, Question]]) -> list[Any]:
        """Traces of the (design, question) pairs, in job order (like `ExecutorRunner.run`)."""
        self.rollouts += len(jobs)
        built = [executor.Job(design=d, question=q, task=self.task, roleset=self.roleset,
                              sample_index=self.sample_index) for d, q in jobs]
        return self.run_jobs(built, keys=[q.id for _, q in jobs])

    # -- any jobs ------------------------------------------------------------------------------
    def run_jobs(self, jobs: Sequence[Any], keys: Sequence[str] | None = None,
                 wrap: Callable[[Any], Any] | None = None,
                 on_done: Callable[[Any], None] | None = None) -> list[Any]:
        """Run executor jobs (`Job`s or picklable `async (client) -> Trace` callables).

        keys:    shard key per job (jobs sharing a key run on one worker); default the job's
                 question id, else its position.
        wrap:    client wrapper applied in each worker per shard (e.g. `SharedCalls`).
        on_done: called in the driver with each trace as it arrives.
        """
        if not jobs:
            return []
        if keys is None:
            keys = [getattr(getattr(j, "question", None), "id", None) or f"#{i}" for i, j in enumerate(jobs)]
        if len(keys) != len(jobs):
            raise ValueError(f"{len(keys)} shard keys for {len(jobs)} jobs")
        self.start()

        size, depth = shard_plan(len(set(keys)), self.workers, self._per_worker)
        shards = [_Shard(s) for s in make_shards(list(keys), size)]
        self.report, self._totals = RunReport(), None
        with _Bar(self, len(jobs), enabled=self.progress) as bar:
            done = on_done if bar.bar is None else _both(on_done, bar.advance)
            return asyncio.run(self._drive(list(jobs), shards, depth, wrap, done))

    @property
    def cache(self) -> Any:
        """The driver's rollout cache (None with mode `off`)."""
        return self._cache

    @property
    def totals(self) -> Any:
        """The budget ledger after the last `run_jobs` (`services.LedgerTotals`), or None."""
        return self._totals

    @property
    def budget_left(self) -> float | None:
        """USD left under the cap over all workers (None without a cap)."""
        if self.client_config.budget_usd is None:
            return None
        if self._totals is not None:
            return self._totals.left_usd
        return max(0.0, self.client_config.budget_usd - self.stats.spent_usd)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and operators)."""
        self.start()
        return self._ray.get([a.pid.remote() for a in self._actors])

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to Ray and start the service and the workers (idempotent)."""
        if self._service is not None:
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


        ray = self._ray = ensure_ray(self.ray_address)
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self._service = ray.remote(DriverService).options(
            num_cpus=0, scheduling_strategy=here, max_concurrency=1000).remote(
            self.cache_path, self.cache_mode, self.client_config.budget_usd)
        started = [self._new_worker(i) for i in range(self.workers)]
        self._actors = [a for a, _ in started]
        self._actor_ids = [w for _, w in started]

    def close(self) -> None:
        """Stop the workers and the service (Ray itself stays up)."""
        if self._ray is None:
            return
        for actor in self._actors + ([self._service] if self._service is not None else []):
            self._ray.kill(actor, no_restart=True)
        self._actors, self._service = [], None
        if self._cache is not None:
            self._cache.close()

    def _new_worker(self, slot: int) -> tuple[Any, str]:
        config, pool = share_limits(self.client_config, self.pool, self.workers)
        worker_id = f"w{next(self._ids)}"
        label = str(self.cache_path) if self.cache_path else None
        actor = self._ray.remote(ShardWorker).options(
            num_cpus=self.cpus_per_worker, max_concurrency=1000).remote(
            worker_id, pool, config, self._service, self.cache_mode, label, self._per_worker,
            forwarded_env(), backend=self.backend, seed=worker_seed(self.seed, slot))
        return actor, worker_id

    # -- the driver loop -----------------------------------------------------------------------
    async def _drive(self, jobs: list[Any], shards: list[_Shard], depth: int, wrap: Any,
                     on_done: Callable[[Any], None] | None) -> list[Any]:
        traces: list[Any] = [None] * len(jobs)
        queue = deque(shards)
        busy: set[int] = set()  # shards being run (a loop may wait for one of them to fail)

        async def slot_loop(slot: int) -> None:
            while queue or busy:
                if not queue:  # another loop's shard may still come back for a retry
                    await asyncio.sleep(0.05)
                    continue
                shard = queue.popleft()
                todo = [(i, jobs[i]) for i in shard.indices if traces[i] is None]
                if not todo:
                    continue
                actor, worker_id = self._actors[slot], self._actor_ids[slot]
                busy.add(id(shard))
                try:
                    stream = actor.run_shard.options(num_returns="streaming").remote(todo, wrap)
                    async for ref in stream:
                        batch = await ref
                        self._worker_stats[worker_id] = batch["stats"]
                        self._consume(batch["events"], traces, on_done)
                except self._ray.exceptions.RayActorError as exc:
                    await self._replace_dead(slot, actor, shard, exc)
                    queue.append(shard)
                except self._ray.exceptions.RayTaskError as exc:
                    raise _cause(exc) from None
                finally:
                    busy.discard(id(shard))

        # Round-robin over workers, so the first shards are spread over all of them.
        await asyncio.gather(*(slot_loop(s) for _ in range(depth) for s in range(self.workers)))
        self._totals = await self._service.totals.remote()
        missing = [i for i, t in enumerate(traces) if t is None]
        if missing:
            raise RuntimeError(f"ray executor: {len(missing)} jobs without a trace (first: {missing[0]})")
        return traces

    def _consume(self, events: list[tuple], traces: list[Any], on_done: Callable[[Any], None] | None) -> None:
        """Write streamed records (the single writer) and keep streamed traces."""
        for event in events:
            if event[0] == "record":
                _, record, request_json = event
                written = self._cache.put(record, request_json) if self._cache is not None else True
                self.report.records_written += int(written)
                self.report.duplicate_records += int(not written)
            else:
                _, index, trace = event
                traces[index] = trace
                if on_done is not None:
                    on_done(trace)

    async def _replace_dead(self, slot: int, actor: Any, shard: _Shard, exc: BaseException) -> None:
        """A worker died under `shard`: write off its open reservations and start a fresh one
        (once per death, whichever of its shards notices first); the caller re-queues."""
        shard.attempts += 1
        if shard.attempts > self.max_shard_retries:
            raise UserError(f"ray executor: a shard failed {shard.attempts} times (worker died: "
                            f"{str(exc).splitlines()[0][:200]}); completed calls are in the cache, "
                            f"re-run to resume")
        self.report.retried_shards += 1
        if self._actors[slot] is not actor:
            return  # already replaced
        self.report.worker_deaths += 1
        dead_id = self._actor_ids[slot]
        self._ray.kill(actor, no_restart=True)  # if it was only unreachable, it stays out
        self._actors[slot], self._actor_ids[slot] = self._new_worker(slot)
        self.report.lost_usd += await self._service.write_off.remote(dead_id)

    @property
    def stats(self) -> ClientStats:
        """The client counters of every worker this runner started (dead ones included)."""
        total = ClientStats()
        for snap in self._worker_stats.values():
            for key, value in snap.items():
                setattr(total, key, getattr(total, key) + value)
        return total


def _cause(exc: BaseException) -> BaseException:
    """The application error inside a RayTaskError (a UserError stays a UserError)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _both(first: Callable[[Any], None] | None, second: Callable[[Any], None]) -> Callable[[Any], None]:
    def call(trace: Any) -> None:
        if first is not None:
            first(trace)
        second(trace)
    return call


class _Bar:
    """One rich progress bar on the driver (stderr, when it is a terminal): jobs done, calls,
    hits, $ spent and $ left over all workers."""

    def __init__(self, runner: RayRunner, total: int, enabled: bool) -> None:
        self.runner, self.total, self.enabled = runner, total, enabled
        self.bar: Any = None

    def __enter__(self) -> "_Bar":
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.fields[info]}"), console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("ray", total=self.total, info=self.info())
        return self

    def info(self) -> str:
        s, left = self.runner.stats, self.runner.budget_left
        return (f"{self.runner.workers} workers · calls {s.calls} · hits {s.cache_hits} · spent "
                f"${s.spent_usd:.4f} · left {'∞' if left is None else f'${left:.4f}'}")

    def advance(self, _trace: Any) -> None:
        self.bar.update(self.task, advance=1, info=self.info())

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def make_runner(executor: str = "local", ray_address: str | None = None, *, task: Any, roleset: Any,
                pool: Pool, cache_path: str | None = None, cache_mode: str = "rw",
                client_config: ClientConfig | None = None, backend: BackendSettings | dict | None = None,
                seed: int = 0, max_in_flight: int = 64, workers: int | None = None, client: Any = None,
                progress: bool = False) -> Any:
    """The runner for `--executor local|ray`: an `ExecutorRunner` over one `LLMClient` (or the
    given `client`), or a `RayRunner` (`workers` default: the cluster's CPUs, at least 1).
    backend / seed: the clients' offline-backend settings and backoff-jitter seed."""
    backend = BackendSettings.from_dict(backend) if isinstance(backend, dict) else backend or BackendSettings()
    if executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    config = client_config or ClientConfig()
    if executor == "local":
        if client is None:
            cache = RolloutCache(cache_path, cache_mode) if cache_path and cache_mode != "off" else None
            client = LLMClient(pool, cache, config, backend=backend, seed=seed)
        return ExecutorRunner(client=client, task=task, roleset=roleset, max_in_flight=max_in_flight)
    if client is not None:
        raise UserError("--executor ray builds one client per worker; a ready client cannot be shipped")
    ray = ensure_ray(ray_address)
    n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return RayRunner(task=task, roleset=roleset, pool=pool, client_config=config, backend=backend, seed=seed,
                     cache_path=cache_path, cache_mode=cache_mode if cache_path else "off",
                     workers=n, max_in_flight=max_in_flight, ray_address=ray_address,
                     progress=progress)
