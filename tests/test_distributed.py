"""The parts of the Ray executor that need no Ray: the budget ledger, shards, limit shares, the
worker's cache view, the flags and their errors. (`test_distributed_ray.py` runs a cluster.)"""

from __future__ import annotations

import asyncio
import pickle
import sys

import pytest

from hieramas_gnn.cli import main as cli
from hieramas_gnn.distributed.options import require_ray
from hieramas_gnn.distributed.runner import make_runner
from hieramas_gnn.distributed.services import DriverService
from hieramas_gnn.distributed.worker import (_SHARD_OUTBOX, WorkerCache, make_shards, shard_plan,
                                             share_limits, worker_seed)
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import RolloutCache
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.pool import ModelSpec, Pool
from hieramas_gnn.llm.types import LLMRecord
from hieramas_gnn.mas.runner import ExecutorRunner
from hieramas_gnn.tasks import get_task


def _record(key: str, cost: float = 0.01) -> LLMRecord:
    return LLMRecord(key=key, model="m", text="Answer: A", prompt_tokens=10, completion_tokens=5,
                     cost_usd=cost, latency_ms=1.0, cache_hit=False, created_at=0.0, litellm_model="x/m")


# -- the ledger ------------------------------------------------------------------------------
def test_the_ledger_refuses_a_call_that_could_pass_the_cap():
    async def go():
        ledger = DriverService(None, "off", budget_usd=1.0)
        assert (await ledger.reserve("w0", 0.6))[0]
        await ledger.settle("w0", 0.6, 0.5)
        ok, why = await ledger.reserve("w1", 0.6)  # 0.5 spent + 0.6 > 1.0
        return ok, why, await ledger.totals()

    ok, why, totals = asyncio.run(go())
    assert not ok and "budget $1.0000" in why
    assert totals.refused == 1 and totals.spent_usd == pytest.approx(0.5)


def test_the_ledger_makes_a_call_wait_for_reservations_in_flight_of_other_workers():
    async def go():
        ledger = DriverService(None, "off", budget_usd=1.0)
        await ledger.reserve("w0", 0.8)  # in flight on another worker
        waiting = asyncio.ensure_future(ledger.reserve("w1", 0.5))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await ledger.settle("w0", 0.8, 0.2)  # it cost less than reserved
        return await waiting

    assert asyncio.run(go()) == (True, "")


def test_a_dead_workers_reservations_count_as_spent():
    async def go():
        ledger = DriverService(None, "off", budget_usd=1.0)
        await ledger.reserve("w0", 0.7)
        lost = await ledger.write_off("w0")
        return lost, await ledger.reserve("w1", 0.5), await ledger.totals()

    lost, (ok, _), totals = asyncio.run(go())
    assert lost == pytest.approx(0.7) and not ok
    assert totals.committed_usd == pytest.approx(0.7) and totals.reserved_usd == 0


def test_the_service_reads_records_the_driver_wrote(tmp_path):
    import hashlib

    path = tmp_path / "c.sqlite"
    key = hashlib.sha256(b"{}").hexdigest()  # a real key: the sha256 of the stored request
    service = DriverService(str(path), "rw", None)  # before the driver's first write
    assert asyncio.run(service.get(key)) is None
    with RolloutCache(path, "rw") as cache:
        cache.put(_record(key), "{}")
    assert asyncio.run(service.get(key)).text == "Answer: A"
    assert asyncio.run(service.get("0" * 64)) is None


# -- shards and shares -----------------------------------------------------------------------
def test_all_jobs_of_one_question_land_in_one_shard():
    keys = ["q1", "q2", "q1", "q3", "q2", "q4"]
    shards = make_shards(keys, size=2)
    assert shards == [[0, 2, 1, 4], [3, 5]]  # q1 and q2 in the first, q3 and q4 in the second


def test_the_shard_plan_keeps_each_worker_busy():
    size, depth = shard_plan(n_keys=10_000, workers=4, per_worker_in_flight=16)
    assert size == 32 and depth == 2  # capped at 2 x in flight; two shards at once
    size, depth = shard_plan(n_keys=24, workers=2, per_worker_in_flight=16)
    assert size * depth >= 2 * 16


def test_each_worker_gets_its_share_of_the_rate_limits():
    pool = Pool("p", (ModelSpec("a", "sim/a", 1e-6, 1e-6, extra={"rpm": 60}),
                      ModelSpec("b", "sim/b", 1e-6, 1e-6)))
    cfg, shared = share_limits(ClientConfig(max_concurrency=32, per_model_concurrency=8, rpm=120,
                                            budget_usd=5.0), pool, workers=4)
    assert (cfg.max_concurrency, cfg.per_model_concurrency, cfg.rpm) == (8, 2, 30)
    assert shared.get("a").extra["rpm"] == 15 and "rpm" not in shared.get("b").extra
    assert cfg.budget_usd == 5.0  # not split: every worker reserves from the one ledger
    assert len({worker_seed(3, i) for i in range(4)} | {worker_seed(4, i) for i in range(4)}) == 8


# -- the worker's cache view -----------------------------------------------------------------
def test_a_worker_queues_each_new_record_once_for_the_driver():
    outbox: asyncio.Queue = asyncio.Queue()
    _SHARD_OUTBOX.set(outbox)
    cache = WorkerCache("rw", None, service=None)
    assert cache.put(_record("k"), "{}") is True
    assert cache.put(_record("k"), "{}") is False
    assert outbox.qsize() == 1
    assert cache.get("k", "m").cache_hit is True


def test_a_replay_worker_never_queues_records():
    cache = WorkerCache("replay", None, service=None)
    assert cache.put(_record("k"), "{}") is False


def test_a_worker_call_the_driver_already_has_is_a_hit_under_backend_settings(tmp_path):
    """The worker looks up the very key the client computes (backend settings and model version
    included): a record the driver wrote in an earlier attempt of a shard is never paid again."""
    from hieramas_gnn.distributed.worker import WorkerClient
    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.llm.types import LLMRequest

    pool = load_pool("sim")
    config, backend = ClientConfig(), {"sim": {"latency": "off", "seed": 7}}
    request = LLMRequest(model=pool.names[0], messages=[{"role": "user", "content": "2+2? Answer: N"}],
                         metadata={"task": "synthetic", "question_id": "synthetic/arithmetic/0/1", "role": "solver"})
    path = str(tmp_path / "c.sqlite")
    paid = asyncio.run(LLMClient(pool, RolloutCache(path, "rw"), config, backend=backend).complete(request))
    assert paid.cache_hit is False

    class Service:  # the driver's service, called in-process
        def __init__(self):
            self.driver = DriverService(path, "rw", None)
            self.get = self

        def remote(self, key):
            return self.driver.get(key)

    worker = WorkerClient(pool, WorkerCache("rw", None, Service()), config, service=None, worker_id="w0",
                          backend=backend)
    again = asyncio.run(worker.complete(request))
    assert again.cache_hit is True and again.text == paid.text
    assert worker.stats.calls == 0
    fresh = WorkerClient(pool, WorkerCache("rw", None, Service()), config, service=None, worker_id="w1",
                         backend=backend)
    assert fresh.lookup(request) == (None, None)  # it overrides `complete`: every call goes there
    passed_on = asyncio.run(fresh.complete(request, key=fresh.request_key(request)))
    assert passed_on.cache_hit is True and passed_on.text == paid.text and fresh.stats.calls == 0


# -- flags, errors, factory ------------------------------------------------------------------
def test_executor_ray_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install '\.\[ray\]'"):
        require_ray()


def test_the_cli_refuses_executor_ray_without_ray(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = cli(["baselines", "--task", "synthetic", "--pool", "sim", "--limit", "1",
                "--executor", "ray"])
    assert code == 2 and "[ray]" in capsys.readouterr().err


def test_ray_address_needs_executor_ray(capsys):
    code = cli(["eval", "--design", "d.json", "--task", "synthetic", "--ray-address", "auto"])
    assert code == 2 and "--ray-address only applies with --executor ray" in capsys.readouterr().err


def test_an_unreachable_ray_address_fails_fast_with_a_clear_error():
    import socket

    from hieramas_gnn.distributed.runner import _check_reachable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=f"--ray-address 127.0.0.1:{port}: no Ray cluster answers"):
        _check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(UserError, match="expected auto, HOST:PORT"):
        _check_reachable("headnode")


def test_make_runner_local_is_the_executor_runner():
    task = get_task("synthetic")
    runner = make_runner("local", task=task, roleset=None, pool=Pool("p", ()), cache_mode="off")
    assert isinstance(runner, ExecutorRunner)
    with pytest.raises(UserError, match="expected one of local, ray"):
        make_runner("dask", task=task, roleset=None, pool=Pool("p", ()))


def test_a_task_survives_pickling_for_the_workers():
    task = get_task("synthetic")
    q = task.load(limit=1)[0]
    task.get(q.id)  # builds the id index (and holds its lock)
    clone = pickle.loads(pickle.dumps(task))
    assert clone.get(q.id) == q
