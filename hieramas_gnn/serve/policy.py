"""`Policy`: a trained bundle as a Python object that chooses designs and runs them.

    from hieramas_gnn import Policy
    policy = Policy.load("runs/demo/policy")            # pool=None: the bundle's own pool
    policy.design("What is 17 * 3?").to_dict()          # the chosen Design (JSON)
    policy.design(q, cost_lambda=300)                   # a cost-conditioned bundle: at cost weight 300
    policy.solve(q, max_cost_usd=5e-4)                  # ... or the most accurate point within $5e-4/query
    sol = policy.solve("What is 17 * 3?")               # runs the MAS: answer, trace, cost, latency
    sols = policy.solve_many([...]); await policy.asolve(q); await policy.asolve_many([...])

`design` always goes through `policy.choose.DesignChooser` (via `export.load_chooser`): what a
Python caller, `hieramas serve`, the litellm provider, `eval` and `run` choose for a question is
the same design. `solve` executes it with `mas.executor.run_design` through an `LLMClient` behind
the rollout cache (`cache`, `cache_mode`, `client` options, `backend` settings as keyword args).

Questions are text, a `(text, meta)` pair or a `tasks.base.Question`. A text that is a question
of the bundle's task (same text; indexed once, lazily, for generated tasks and local data) runs
as that question: it is graded, and the offline `sim` backend can answer it. Any other text runs
as an ad-hoc question `adhoc/<sha256[:16]>`: not graded (`correct` is None); real providers
answer it, the `sim` backend refuses it (it only knows the task's questions).

A cost-conditioned bundle (trained with `reward.cost_lambda_range`, `policy/cost.py`) takes the
cost trade-off per call: `cost_lambda=λ` (clamped into the trained range) or `max_cost_usd=X` (the
most accurate grid point whose measured $/query on the validation questions is at most X; none:
the cheapest point), never both; neither: the bundle's default λ. Each must be a finite number
>= 0 (a `UserError` naming the field otherwise); a bundle of one fixed λ refuses them.

Every method also takes per-request limits on the design's size (`mas.limits`): `max_calls=N`
(the most LLM calls its execution can make, decision included) and `max_rounds=N` (the most
sequential rounds of calls: a role's proposers run together, its synthesizer after them, a role
after its inputs, the decision last). Each a whole number >= 1 (a `UserError` naming the field
otherwise); the chosen design always keeps within them (`policy.choose` says how it is chosen).
They go with any bundle, cost-conditioned or not.

`pool` overrides the model strings: a pool YAML (or `Pool`) with exactly the bundle's model names
(checked, the error lists the differences) and the user's own litellm model strings and keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hieramas_gnn.build import ClientSettings, make_client
from hieramas_gnn.bundle import check_digest, load_chooser, read_meta
from hieramas_gnn.bundle_trust import (
    bundle_code_ref,
    bundle_local_path,
    bundle_pool,
    bundle_roleset,
    recorded_backend,
)
from hieramas_gnn.config_io import from_dict
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.mas.executor import run_design
from hieramas_gnn.mas.limits import RequestLimits, design_calls, design_rounds
from hieramas_gnn.tasks import get_task, register_task, task_from_config
from hieramas_gnn.tasks.base import Question, Score
from hieramas_gnn.tasks.generic import GenericTask


@dataclass
class Solution:
    """One question through the learned MAS (`Policy.solve`)."""

    question: str
    question_id: str
    design: dict[str, Any]
    text: str | None
    """The reply the answer came from: the decision model's, or, when the design answers without a
    decision call (one model alone, or unanimous roles), the role's it took; None when the episode failed."""
    answer: str | None
    """The answer extracted from `text` by the task's parser."""
    correct: bool | None
    """Graded against the task's reference; None for ad-hoc questions and failed episodes."""
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    """Critical-path latency from the per-call latencies (what a user waits)."""
    wall_ms: float
    failed: bool
    failure_reason: str | None
    trace: dict[str, Any]
    """`mas.trace.Trace.to_dict()`: every call (model, role, tokens, cost, latency, cache hit)."""
    cost: dict[str, Any] | None = None
    """A cost-conditioned bundle: the `policy.cost.CostPick` the design was chosen at (cost_lambda,
    source, expected_cost_usd, fits); None for a bundle of one fixed λ."""
    limits: dict[str, Any] | None = None
    """The request's limits (`max_calls`, `max_rounds`) and the design's own `calls` and `rounds`
    (`mas.limits`); None when the request set no limit."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens": self.tokens}


class _Ungraded:
    """A task whose `score` only extracts (ad-hoc questions have no reference answer)."""

    def __init__(self, task: Any) -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def score(self, response: str, question: Any) -> Any:
        return Score(correct=False, extracted=self._task.extract(response or "", question))


class _Recorder:
    """Passes calls to `client`; keeps the decision call's reply text."""

    def __init__(self, client: Any) -> None:
        self.client, self.final = client, None

    async def complete(self, request: Any) -> Any:
        record = await self.client.complete(request)
        if request.metadata.get("position") == "decision":
            self.final = record.text
        return record


class Policy:
    """A loaded bundle: `design`, `solve`, `asolve` and their batch versions (module docstring)."""

    def __init__(self, chooser: Any, meta: Any, *, pool: Any, task: Any, roleset: Any,
                 client_settings: ClientSettings, name: str) -> None:
        self.chooser, self.meta, self.pool, self.task, self.roleset = chooser, meta, pool, task, roleset
        self.client_settings, self.name = client_settings, name
        self._lock = threading.Lock()
        self._client: Any = None
        self._known: dict[str, Any] | None = None

    @classmethod
    def load(cls, bundle: str | Path, pool: Any = None, *, task: str | None = None,
             cache: str | Path | None = "runs/rollouts.sqlite", cache_mode: str = "rw",
             client: dict[str, Any] | None = None, backend: dict[str, Any] | None = None,
             embed_cache: str | Path | None = None, name: str | None = None,
             trust_bundle_endpoints: bool = False, sha256: str | None = None) -> Policy:
        """Load and verify `bundle`. pool: None (the bundle's pool), a pool name/YAML path or a
        `Pool` with the same model names; task: defaults to the bundle's; cache / cache_mode
        (`rw`, `replay`, `off`): the rollout cache; client: `llm.client.ClientConfig` fields;
        backend: the offline backends' settings (`llm.types.BackendSettings` or its mapping;
        default: those the bundle was trained with, `bundle_trust.recorded_backend`).

        A bundle never chooses where calls go, which key they carry, which local file is read or
        which code runs (`bundle_trust.py`): a bundle whose pool names real providers needs `pool`
        (yours, with its model names), or `trust_bundle_endpoints=True` (prints what it trusts).
        sha256: the bundle's digest (`bundle.bundle_digest`, printed by `hieramas export`) to pin."""
        if cache_mode not in ("rw", "replay", "off"):
            raise UserError(f"cache_mode must be one of rw, replay, off; got {cache_mode!r}")
        check_digest(bundle, sha256)
        meta = read_meta(bundle)
        trust = bool(trust_bundle_endpoints)
        pool_obj = bundle_pool(bundle, meta, pool, trust=trust)
        chooser, meta = load_chooser(bundle, pool=pool_obj, embed_cache=embed_cache)
        task_name = task or meta.task or meta.family
        if not task_name:
            raise UserError(f"{bundle}: the bundle records no task; pass task=...")
        if task is None:
            bundle_code_ref(task_name, "task", bundle, trust)
            if task_name.endswith((".yaml", ".yml")):
                bundle_local_path(task_name, "task file", bundle, trust)
        task_obj = bundle_task(task_name, meta, bundle, trust) if task is None else get_task(task_name)
        roleset = bundle_roleset(bundle, meta, trust, task_obj.family)
        if isinstance(backend, dict):
            backend = from_dict(BackendSettings, backend, "backend")
        if backend is None:  # the offline backends as in training: its rollout cache is hit, the sim answers alike
            backend = recorded_backend(meta)
        settings = ClientSettings(cache_path=None if cache_mode == "off" or cache is None else str(cache),
                                  cache_mode="off" if cache is None else cache_mode,
                                  config=from_dict(ClientConfig, dict(client or {}), "client"),
                                  backend=backend or BackendSettings())
        return cls(chooser, meta, pool=pool_obj, task=task_obj, roleset=roleset, client_settings=settings,
                   name=name or bundle_name(bundle))

    # -- design -------------------------------------------------------------------------------
    def question(self, q: Any, meta: dict[str, Any] | None = None) -> Any:
        """The `Question` a text, `(text, meta)` pair or `Question` runs as (module docstring)."""
        if isinstance(q, Question):
            return q
        if meta is not None and not isinstance(meta, dict):
            raise UserError(f"a question's meta must be a dict, got {type(meta).__name__}")
        if isinstance(q, tuple):
            if len(q) != 2 or not isinstance(q[1], dict | type(None)):
                raise UserError("a question given as a tuple must be (text, meta dict), got "
                                f"({', '.join(type(x).__name__ for x in q)})")
            q, meta = q[0], {**(q[1] or {}), **(meta or {})}
        if not isinstance(q, str) or not q.strip():
            raise UserError("a question must be a non-empty string")
        try:
            q.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError("a question must be valid Unicode text (it holds a lone surrogate such as \\ud800)") from None
        known = self._known_questions().get(q)
        if known is not None:
            return known
        digest = hashlib.sha256(q.encode("utf-8")).hexdigest()[:16]
        return Question(id=f"adhoc/{digest}", task=self.task.name, text=q, gold=None, meta=dict(meta or {}))

    def _known_questions(self) -> dict[str, Any]:
        with self._lock:
            if self._known is None:
                known: dict[str, Any] = {}
                for split in ("train", "val", "test"):
                    try:
                        for q in self.task.load(None, split=split):
                            known.setdefault(q.text, q)
                    except (UserError, OSError):  # no local data for this task: ad-hoc only
                        continue
                self._known = known
            return self._known

    @property
    def cost_grid(self) -> Any:
        """The bundle's `policy.cost.CostGrid` (None: one fixed cost weight)."""
        return self.chooser.cost

    def cost_pick(self, cost_lambda: Any = None, max_cost_usd: Any = None, *, where: str = "") -> Any:
        """The `CostPick` of a request (module docstring); None for a bundle of one fixed λ given
        neither. `where` prefixes the field names in errors."""
        from hieramas_gnn.policy.cost import check_cost_number  # lazy: the grid lives beside the policy

        grid = self.cost_grid
        if grid is None:
            for value, name in ((cost_lambda, "cost_lambda"), (max_cost_usd, "max_cost_usd")):
                if value is not None:
                    check_cost_number(value, f"{where}{name}")
                    raise UserError(f"{where}{name}: this policy bundle is not cost-conditioned (it was trained for one "
                                    "cost weight); train one with reward.cost_lambda_range")
            return None
        return grid.pick(cost_lambda, max_cost_usd, where=where)

    def request_limits(self, max_calls: Any = None, max_rounds: Any = None, *, where: str = "") -> Any:
        """The checked `mas.limits.RequestLimits` of a request (None when it sets none); the
        roleset's gradable roles are those whose lone answer needs no decision call. `where`
        prefixes the field names in errors."""
        limits = RequestLimits.make(max_calls, max_rounds, where=where,
                                    final_roles=[r.name for r in self.roleset.roles if r.gradable])
        return limits if limits.active else None

    def limits_report(self, design: Any, limits: Any) -> dict[str, Any] | None:
        """`Solution.limits`: the request's limits and the design's calls and rounds."""
        if limits is None:
            return None
        return limits.to_dict() | {"calls": design_calls(design, limits.final_roles),
                                   "rounds": design_rounds(design, limits.final_roles)}

    def designs(self, questions: Sequence[Any], *, cost_lambda: Any = None, max_cost_usd: Any = None,
                max_calls: Any = None, max_rounds: Any = None) -> list[Any]:
        """The chosen `Design` of each question (the one design-choice function), at the cost
        trade-off of `cost_lambda` / `max_cost_usd`, within `max_calls` / `max_rounds` (module
        docstring)."""
        limits = self.request_limits(max_calls, max_rounds)
        pick = self.cost_pick(cost_lambda, max_cost_usd)
        qs = [self.question(q) for q in questions]
        with self._lock:
            if pick is None and limits is None:
                return self.chooser.designs([(q.text, q.meta) for q in qs])
            return self.chooser.designs([(q.text, q.meta) for q in qs], None if pick is None else pick.cost_lambda,
                                        limits)

    def design(self, question: Any, *, cost_lambda: Any = None, max_cost_usd: Any = None,
               max_calls: Any = None, max_rounds: Any = None) -> Any:
        """The chosen `mas.design.Design` of one question (`.to_dict()` is its JSON)."""
        return self.designs([question], cost_lambda=cost_lambda, max_cost_usd=max_cost_usd,
                            max_calls=max_calls, max_rounds=max_rounds)[0]

    # -- solve --------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The LLM client (built on first use): the pool, the rollout cache, the client options."""
        with self._lock:
            if self._client is None:
                self._client = make_client(self.client_settings, self.pool)
            return self._client

    async def asolve(self, question: Any, *, cost_lambda: Any = None, max_cost_usd: Any = None,
                     max_calls: Any = None, max_rounds: Any = None) -> Solution:
        """Choose the design of `question` (at `cost_lambda` / `max_cost_usd`, within `max_calls` /
        `max_rounds`, module docstring) and run it through the client (await it)."""
        limits = self.request_limits(max_calls, max_rounds)
        q = self.question(question)
        pick = self.cost_pick(cost_lambda, max_cost_usd)
        lam = None if pick is None else pick.cost_lambda
        design = await asyncio.to_thread(lambda: self.design(q, cost_lambda=lam, max_calls=max_calls,
                                                             max_rounds=max_rounds))
        sol = await self._run(design, q)
        sol.cost = None if pick is None else pick.to_dict()
        sol.limits = self.limits_report(design, limits)
        return sol

    @property
    def ungraded_task(self) -> Any:
        """The task as ad-hoc questions run under it: answers extracted, nothing graded."""
        return _Ungraded(self.task)

    def check_answerable(self, q: Any) -> None:
        """A clear `UserError` (a 400 when served) for a question the pool cannot answer: the
        offline `sim/` models know only the questions of the bundle's task, not free text."""
        if q.gold is not None or not str(q.id).startswith("adhoc/"):
            return
        sims = [m.name for m in self.pool.models if (m.provider or "") == "sim"]
        if sims:
            raise UserError(f"unknown question id {q.id!r} for the offline sim pool: its simulated models answer only "
                            f"the questions of task {self.task.name!r} (this text is none of them). Ask one of those "
                            f"(`hieramas tasks show {self.task.name}`), or load the bundle with a pool of real models "
                            "(pool=... / --pool)")

    async def _run(self, design: Any, q: Any) -> Solution:
        self.check_answerable(q)
        graded = q.gold is not None
        task = self.task if graded else _Ungraded(self.task)
        recorder = _Recorder(self.client)
        trace = await run_design(design, q, task, recorder, self.roleset)
        calls = trace.calls
        return Solution(question=q.text, question_id=q.id, design=design.to_dict(),
                        text=None if trace.failed else _final_text(recorder.final, design, trace), answer=trace.answer,
                        correct=trace.correct if graded else None, cost_usd=trace.cost_usd,
                        prompt_tokens=sum(c.prompt_tokens for c in calls),
                        completion_tokens=sum(c.completion_tokens for c in calls),
                        latency_ms=trace.latency_ms, wall_ms=trace.wall_ms, failed=trace.failed,
                        failure_reason=trace.failure_reason, trace=trace.to_dict())

    async def asolve_many(self, questions: Sequence[Any], max_concurrency: int = 16, *, cost_lambda: Any = None,
                          max_cost_usd: Any = None, max_calls: Any = None, max_rounds: Any = None) -> list[Solution]:
        """`asolve` over many questions, at most `max_concurrency` at once, in input order."""
        if max_concurrency < 1:
            raise UserError(f"max_concurrency must be >= 1, got {max_concurrency}")
        limits = self.request_limits(max_calls, max_rounds)
        qs = [self.question(q) for q in questions]
        pick = self.cost_pick(cost_lambda, max_cost_usd)
        lam = None if pick is None else pick.cost_lambda
        designs = await asyncio.to_thread(lambda: self.designs(qs, cost_lambda=lam, max_calls=max_calls,
                                                               max_rounds=max_rounds))
        gate = asyncio.Semaphore(max_concurrency)

        async def one(d: Any, q: Any) -> Solution:
            async with gate:
                sol = await self._run(d, q)
                sol.cost = None if pick is None else pick.to_dict()
                sol.limits = self.limits_report(d, limits)
                return sol

        return list(await asyncio.gather(*(one(d, q) for d, q in zip(designs, qs))))

    def solve(self, question: Any, *, cost_lambda: Any = None, max_cost_usd: Any = None,
              max_calls: Any = None, max_rounds: Any = None) -> Solution:
        """`asolve` from synchronous code (not from inside a running event loop: await `asolve`)."""
        return _run_sync(self.asolve(question, cost_lambda=cost_lambda, max_cost_usd=max_cost_usd,
                                     max_calls=max_calls, max_rounds=max_rounds))

    def solve_many(self, questions: Sequence[Any], max_concurrency: int = 16, *, cost_lambda: Any = None,
                   max_cost_usd: Any = None, max_calls: Any = None, max_rounds: Any = None) -> list[Solution]:
        """`asolve_many` from synchronous code."""
        return _run_sync(self.asolve_many(questions, max_concurrency, cost_lambda=cost_lambda,
                                          max_cost_usd=max_cost_usd, max_calls=max_calls, max_rounds=max_rounds))

    def info(self) -> dict[str, Any]:
        """What the bundle is: name, task, roles, pool models, decision model, route."""
        m = self.meta
        grid = self.cost_grid
        return {"name": self.name, "task": self.task.name, "family": m.family, "roles": m.role_names,
                "pool": self.pool.names, "decision": m.decision, "route": self.chooser.settings.route,
                "bundle_version": m.version, "package_version": m.package_version,
                "cost_lambda_range": None if grid is None else [grid.lo, grid.hi]}


def _final_text(decision_reply: str | None, design: Any, trace: Any) -> str | None:
    """The reply the answer came from: the decision call's; without one (a lone single-model
    design, or unanimous roles the decision reads), the first role the decision reads, as the
    executor takes it (`mas.executor._decide`)."""
    if decision_reply is not None:
        return decision_reply
    reads = design.decision_reads()
    node = next((n for n in trace.nodes if reads and n.index == reads[0]), None)
    return node.text if node is not None else None


def bundle_name(bundle: str | Path) -> str:
    """The name a bundle is served under: its folder's name (the run folder's for `<run>/policy`)."""
    path = Path(bundle).resolve()
    return path.parent.name if path.name == "policy" else path.name


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise UserError("called from inside a running event loop: use `await policy.asolve(...)` "
                    "/ `await policy.asolve_many(...)` there")


def bundle_task(name: str, meta: Any, bundle: str | Path = "", trust: bool = False) -> Any:
    """The bundle's task: a registered one, else the user task its training config describes
    (a jsonl + scorer, `task_from_config`), so a bundle of a custom task serves without code.
    Untrusted (`bundle_trust.py`): its scorer must be a built-in one (no `module:function`), and its
    question file must lie inside the current folder (else it serves ad-hoc questions only)."""
    from types import SimpleNamespace


    tc = ((getattr(meta, "hyperparameters", None) or {}).get("task") or {})
    if not isinstance(tc, dict):
        raise UserError(f"policy bundle {bundle}: hyperparameters.task must be a mapping")
    if tc.get("scorer") and tc.get("name") == name:
        if not isinstance(tc["scorer"], str) or not isinstance(tc.get("path") or "", str):
            raise UserError(f"policy bundle {bundle}: hyperparameters.task scorer/path must be strings")
        bundle_code_ref(tc["scorer"], "task scorer", bundle, trust)
        if getattr(meta, "task_questions", None):  # the bundle carries its questions: no file is read
            # registered, so the offline backends of this process (which look tasks up by name) find it
            return register_task(GenericTask(name, tc.get("path") or name, tc["scorer"], rows=meta.task_questions))
        path = tc.get("path")
        try:
            path = bundle_local_path(path, "task question file", bundle, trust)
        except UserError:
            path = None
        if path is None:  # no file it may read: the task grades nothing, every question is ad-hoc

            return GenericTask(name, "", tc["scorer"])
        return task_from_config(SimpleNamespace(**{**tc, "path": path}))
    return get_task(name)
