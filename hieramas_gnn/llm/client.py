"""The LLM client: the only place in the project that calls `litellm.acompletion`.

`await LLMClient(pool, cache, config).complete(request) -> LLMRecord`:
1. resolve the pool model, hash the canonical request (`cache.request_key`);
2. a cache hit returns at once (costs nothing); in replay-only mode a miss raises `CacheMiss`;
   identical requests already in flight in this client share one provider call;
3. reserve an upper bound of the call's cost (prompt tokens + max_tokens at the model's prices):
   if it could take spend past `budget_usd`, raise `BudgetExceeded` without calling;
4. call the provider under the global / per-model concurrency limits and the per-model
   requests-per-minute pace, with a per-call timeout; retry 429 (honouring Retry-After), 5xx,
   timeouts, connection errors and malformed bodies with exponential backoff and full jitter;
   bad input refused by an offline provider raises `ProviderInputError` at once;
5. compute the cost (litellm's cost map, or the pool's prices for models it does not list),
   store the record in the cache (committed at once) and return it. Failures are never cached.

The in-process providers (`sim/`, `replay/`) take the same steps without litellm: the client
calls their registered handler directly (`_in_process_attempt`), awaits the simulated latency
under the timeout and prices the call at the pool's prices, so a cold call costs the simulator's
time, not litellm's per-call logging, cost lookup and response building (~2.5 ms). Records,
costs and cache contents are those of the litellm path (tests/test_in_process_calls.py), and
a process whose pool has only such models need not import litellm at all (`llm.handlers`); their
handlers are put into litellm's map once litellm is imported, so `litellm.completion("sim/...")`
works for users.
The client's `backend` settings (seed, latency, behaviour file) travel with each of their calls and are
part of their cache key.

`client.lookup(request) -> (key, record or None)` is steps 1-2 without an event loop: the
executor answers cache hits with it (replayed training: no asyncio task per call) and passes a
miss's key on to `complete(request, key=key)`.

Spend, call and hit counts live on the client instance (`client.stats`); nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Iterator

from hieramas_gnn.config_io import non_negative, positive
from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.llm import handlers
from hieramas_gnn.llm.cache import (OFFLINE_PROVIDERS, RolloutCache, canonical_json, canonical_request,
                                    request_key)
from hieramas_gnn.llm.pool import ModelSpec, Pool, litellm_prices
from hieramas_gnn.llm.types import (BackendSettings, BudgetExceeded, CacheMiss, LLMCallError, LLMRecord,
                                    LLMRequest, ProviderInputError)
from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.redact import redact

_RETRY_STATUS = {408, 409, 425, 429}
IN_PROCESS = ("sim", "replay")  # providers answered in this process, without litellm (see _in_process_attempt)
BACKEND_KWARG = "hieramas_backend"  # the litellm kwarg carrying BackendSettings to sim/ and replay/
PROVIDER_GROUP = "hieramas_gnn.providers"  # entry points registering litellm custom providers


@dataclass
class ClientConfig:
    """Limits and retry policy of one client (the run config's `client` section extends it)."""

    max_concurrency: int = 32
    """Provider calls in flight at once, all models together."""
    per_model_concurrency: int = 8
    """Provider calls in flight at once per pool model."""
    rpm: float | None = None
    """Requests per minute per model (None: no pacing); a model's `extra.rpm` in the pool overrides it."""
    max_retries: int = 4
    """Retries after the first attempt (429, 5xx, timeouts, malformed bodies)."""
    backoff_base_s: float = 0.5
    """First backoff (s): attempt n waits U(0, min(backoff_max_s, base * 2**n))."""
    backoff_max_s: float = 30.0
    """Cap of one backoff (s); a longer Retry-After is still honoured."""
    timeout_s: float = 120.0
    """Per-attempt timeout (s)."""
    budget_usd: float | None = None
    """Spend cap (USD; None: no cap); cache hits are free."""
    assumed_max_tokens: int = 1024
    """Completion tokens assumed for the budget reservation when a request sets no max_tokens."""

    def __post_init__(self) -> None:
        problems = [f"client.{name}: {message}" for name, message in self.check()]
        if problems:
            raise ConfigError("; ".join(problems))

    def check(self) -> Iterator[tuple[str, str]]:
        """(field, message) for every invalid value: the one validation of these settings."""
        for name in ("max_concurrency", "per_model_concurrency", "assumed_max_tokens"):
            yield from positive(name, getattr(self, name))
        for name in ("max_retries", "backoff_base_s", "backoff_max_s", "timeout_s"):
            yield from non_negative(name, getattr(self, name))
        if self.budget_usd is not None:
            yield from non_negative("budget_usd", self.budget_usd)
        if self.rpm is not None:
            yield from positive("rpm", self.rpm)


@dataclass
class ClientStats:
    """What this client did: provider calls, attempts, retries, hits, failures, spend."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    refused: int = 0
    spent_usd: float = 0.0
    """Paid now: the cost of this client's provider calls (`calls`)."""
    reserved_usd: float = 0.0
    cached_usd: float = 0.0
    """What the `cache_hits` cost when they were first paid (not paid again now)."""

    # The project's one cost vocabulary (console, reports, wandb): *paid now* (this client's
    # provider calls, what it spent), *cached* (calls answered from the rollout cache: their cost
    # when first paid) and *total* (the cost of every call the work made: paid now + cached).
    def cost_line(self) -> str:
        """`N LLM calls: P paid now ($X) + C cached ($Y when first paid); total $Z`."""
        paid, cached = float(self.spent_usd), float(self.cached_usd)
        return (f"{self.calls + self.cache_hits} LLM calls: {self.calls} paid now (${paid:.4f}) + "
                f"{self.cache_hits} cached (${cached:.4f} when first paid); total ${paid + cached:.4f}")

    def cost_metrics(self) -> dict[str, float]:
        """`cost_line`'s figures: llm/paid_usd, llm/cached_usd, llm/total_usd, llm/paid_calls, llm/cached_calls."""
        paid, cached = float(self.spent_usd), float(self.cached_usd)
        return {"llm/paid_usd": paid, "llm/cached_usd": cached, "llm/total_usd": paid + cached,
                "llm/paid_calls": int(self.calls), "llm/cached_calls": int(self.cache_hits)}


class MalformedResponse(LLMCallError):
    """The provider answered 2xx with a body that has no usable message (retried)."""


class _LoopState:
    """Semaphores, pace clocks and in-flight futures bound to one event loop."""

    def __init__(self, config: ClientConfig) -> None:
        self.loop = asyncio.get_running_loop()
        self.global_sem = asyncio.Semaphore(config.max_concurrency)
        self.model_sems: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(config.per_model_concurrency))
        self.pace_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.inflight: dict[str, asyncio.Future] = {}
        self.budget = asyncio.Condition()


class LLMClient:
    """Async client over litellm with cache, limits, retries and a budget (module docstring)."""

    def __init__(self, pool: Pool, cache: RolloutCache | None = None,
                 config: ClientConfig | None = None, *, backend: BackendSettings | dict | None = None,
                 seed: int = 0, sleep=asyncio.sleep):
        """backend: the in-process backends' settings (`sim/`, `replay/`: seed, latency, behaviour
        file; a `BackendSettings` or its mapping, default the defaults), sent with each of their
        calls as the litellm kwarg `hieramas_backend` and part of their cache key (real providers
        never receive them); seed: seed of the backoff jitter."""
        ensure_offline_defaults()
        self.pool = pool
        self.cache = cache if cache is not None else RolloutCache(None, "off")
        self.config = config or ClientConfig()
        if isinstance(backend, dict):  # e.g. backend={"sim": {"latency": "off"}}
            backend = BackendSettings.from_dict(backend)
        if backend is not None and not isinstance(backend, BackendSettings):
            raise UserError(f"client backend: expected BackendSettings or a mapping, got {type(backend).__name__}")
        self.backend = backend or BackendSettings()
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._registered: set[str] = set()
        self._handlers: dict[str, Any] = {}
        self._state: _LoopState | None = None
        self._next_slot: dict[str, float] = defaultdict(float)  # time.monotonic() per model
        self._backend_params: tuple[Any, dict[str, Any]] = (None, {})
        self._hits: dict[tuple[str, str], LLMRecord] | None = None  # while `remembering_hits`
        for spec in pool:  # register the pool's providers now, before any call is in flight
            if spec.provider in OFFLINE_PROVIDERS or provider_entry_point(spec.provider) is not None:
                self._register_provider(spec)

    # -- public --------------------------------------------------------------------------------
    @property
    def budget_left(self) -> float | None:
        """USD left under the cap (None without a cap)."""
        if self.config.budget_usd is None:
            return None
        return max(0.0, self.config.budget_usd - self.stats.spent_usd)

    def request_key(self, request: LLMRequest) -> str:
        """The rollout-cache key of `request` as this client would call it."""
        spec = self.pool.get(request.model)
        return request_key(request, spec.litellm_model, self._provider_params(spec))

    def lookup(self, request: LLMRequest) -> tuple[str | None, LLMRecord | None]:
        """(cache key, the rollout cache's record) of `request` without calling anything or
        needing an event loop; a record is counted as a cache hit exactly as `complete` counts
        one. (None, None) without a cache, and from a subclass that overrides `complete` (it
        sees every call there). A caller given no record passes the key on to
        `complete(request, key=key)`, which then does not hash the request again."""
        if self.cache.mode == "off" or type(self).complete is not LLMClient.complete:
            return None, None
        spec = self.pool.get(request.model)
        key = request_key(request, spec.litellm_model, self._provider_params(spec))
        return key, self._hit(spec, key)

    @contextlib.contextmanager
    def remembering_hits(self) -> Iterator[None]:
        """Inside: a record read from the rollout cache (and verified by its checksum) is kept
        in memory and served again without reading SQLite, counted as a cache hit each time
        exactly as a read one is. Stored records are never rewritten (`RolloutCache.put` ignores
        a key already there), so the served record is the one the cache would give; a record
        damaged after its first verified read inside the block is found by the next read after
        it. Meant for a phase that asks the same calls many times (the design search, where
        designs share their nodes' calls); the records are dropped at the end. Nested: the
        outer block's memory is used."""
        if self._hits is not None:
            yield
            return
        self._hits = {}
        try:
            yield
        finally:
            self._hits = None

    def _hit(self, spec: ModelSpec, key: str) -> LLMRecord | None:
        hits = self._hits
        hit = hits.get((key, spec.name)) if hits is not None else None
        if hit is None:
            hit = self.cache.get(key, spec.name)
            if hit is not None and hits is not None:
                hits[(key, spec.name)] = hit
        if hit is not None:
            self.stats.cache_hits += 1
            self.stats.cached_usd += float(hit.cost_usd)
        return hit

    async def complete(self, request: LLMRequest, *, key: str | None = None) -> LLMRecord:
        """One chat completion (see the module docstring for the steps); `key`: the request's
        cache key when the caller has it (`lookup`)."""
        spec = self.pool.get(request.model)
        if key is None:
            key = request_key(request, spec.litellm_model, self._provider_params(spec))
        hit = self._hit(spec, key)
        if hit is not None:
            return hit
        if self.cache.mode == "replay":
            raise CacheMiss(f"replay-only cache {self.cache.path}: no record for model "
                            f"{spec.name} ({spec.litellm_model}), question "
                            f"{request.metadata.get('question_id', '?')}, key {key[:12]}")
        state = self._loop_state()
        if key in state.inflight:  # the same request is being answered: share that call
            record = await asyncio.shield(state.inflight[key])
            self.stats.cache_hits += 1
            self.stats.cached_usd += float(record.cost_usd)
            return replace(record, cache_hit=True, model=spec.name)
        future = state.loop.create_future()
        state.inflight[key] = future
        try:
            record = await self._miss(spec, request, key)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else LLMCallError("cancelled"))
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        finally:
            state.inflight.pop(key, None)
        future.set_result(record)
        return record

    # -- the miss path -------------------------------------------------------------------------
    async def _miss(self, spec: ModelSpec, request: LLMRequest, key: str) -> LLMRecord:
        self._check_input(spec, request)  # refused before anything is sent or paid
        estimate = await self._reserve(spec, request)
        record = None
        try:
            record = await self._call_with_retries(spec, request, key)
        except (LLMCallError, ProviderInputError):
            self.stats.failures += 1
            raise
        finally:
            await self._settle(estimate, record.cost_usd if record is not None else 0.0)
        if self.cache.mode == "rw":  # the only mode in which a cache keeps what `put` gives it
            body = canonical_request(request, spec.litellm_model, self._provider_params(spec))
            self.cache.put(record, canonical_json(body))
        return record

    def _check_input(self, spec: ModelSpec, request: LLMRequest) -> None:
        """Refuse, before the call, a prompt longer than the model's context (`max_input_tokens`)
        and a call whose cost cannot be a finite number: neither is sent, paid or cached."""
        limit = max_input_tokens(spec)
        chars = sum(len(str(m.get("content", ""))) for m in request.messages)
        tokens = chars // 4  # ~4 characters per token: a lower bound in practice, and what sim/ bills
        if tokens > limit:
            self.stats.failures += 1
            raise ProviderInputError(
                f"{spec.name} ({spec.litellm_model}): the prompt of question "
                f"{request.metadata.get('question_id', '?')} is about {tokens:,} tokens ({chars:,} characters), "
                f"more than the model's context of {limit:,} tokens; not sent (shorten the question, or set "
                "the pool model's extra.max_input_tokens)")
        completion = request.max_tokens or self.config.assumed_max_tokens
        if not math.isfinite(spec.cost(max(tokens, 1), completion)):
            self.stats.failures += 1
            raise ProviderInputError(f"{spec.name} ({spec.litellm_model}): the cost of this call is not a finite "
                                     "number (check the pool's prices); not sent")

    def estimate_cost(self, request: LLMRequest) -> float:
        """Upper bound of a call's cost: prompt tokens + max_tokens (or assumed_max_tokens)."""
        spec = self.pool.get(request.model)
        completion = request.max_tokens or self.config.assumed_max_tokens
        return spec.cost(_prompt_tokens(spec, request), completion)

    async def _reserve(self, spec: ModelSpec, request: LLMRequest) -> float:
        """Reserve an upper bound of the call's cost before it is made.

        Refused (BudgetExceeded, nothing sent) when spent + bound would pass the cap; when only
        the calls in flight stand in the way, wait for them to settle (they usually cost less
        than their reservation) and check again.
        """
        cap = self.config.budget_usd
        if cap is None:
            return 0.0
        estimate = self.estimate_cost(request)
        cond = self._loop_state().budget
        async with cond:
            while self.stats.spent_usd + self.stats.reserved_usd + estimate > cap:
                if self.stats.spent_usd + estimate > cap or self.stats.reserved_usd <= 0:
                    self.stats.refused += 1
                    raise BudgetExceeded(
                        f"budget ${cap:.4f}: call to {spec.name} (up to ${estimate:.6f}) refused; "
                        f"spent ${self.stats.spent_usd:.6f} of it")
                await cond.wait()
            self.stats.reserved_usd += estimate
        return estimate

    async def _settle(self, estimate: float, cost: float) -> None:
        """Replace a call's reservation by what it cost; wake calls waiting for budget."""
        self.stats.spent_usd += cost
        if self.config.budget_usd is None:
            return
        cond = self._loop_state().budget
        async with cond:
            self.stats.reserved_usd -= estimate
            cond.notify_all()

    async def _call_with_retries(self, spec: ModelSpec, request: LLMRequest, key: str) -> LLMRecord:
        import openai

        in_process = spec.provider in IN_PROCESS and self._register_provider(spec) is not None
        kwargs = self._in_process_kwargs(spec, request) if in_process else self._kwargs(spec, request)
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            try:
                if in_process:
                    return await self._in_process_attempt(spec, request, key, kwargs)
                response, latency_ms = await self._attempt(spec, kwargs)
                return self._record(spec, request, key, response, latency_ms)
            except (openai.OpenAIError, asyncio.TimeoutError, MalformedResponse) as exc:
                bad_input = getattr(exc, ProviderInputError.MARK, None)
                if bad_input is not None:  # an offline provider refused the input: never retried
                    raise ProviderInputError(f"{spec.name} ({spec.litellm_model}): {bad_input}") from exc
                if not _retryable(exc):
                    raise LLMCallError(f"{spec.name} ({spec.litellm_model}): {_describe(exc)}") from exc
                if attempt == attempts - 1:
                    raise LLMCallError(f"{spec.name} ({spec.litellm_model}): failed after "
                                       f"{attempts} attempts: {_describe(exc)}") from exc
                self.stats.retries += 1
                await self._sleep(self._backoff(attempt, exc))
        raise AssertionError("unreachable")

    async def _attempt(self, spec: ModelSpec, kwargs: dict[str, Any]) -> tuple[Any, float]:
        """One provider call under the limits; returns (response, latency ms)."""
        import litellm

        if handlers.get(spec.provider) is not None:  # an in-process provider called through litellm
            handlers.to_litellm(spec.provider)
        state = self._loop_state()
        async with state.global_sem, state.model_sems[spec.name]:
            await self._pace(spec, state)
            self.stats.attempts += 1
            start = time.perf_counter()
            response = await asyncio.wait_for(litellm.acompletion(**kwargs),
                                              timeout=self.config.timeout_s)
            return response, (time.perf_counter() - start) * 1000.0

    async def _in_process_attempt(self, spec: ModelSpec, request: LLMRequest, key: str,
                                  kwargs: dict[str, Any]) -> LLMRecord:
        """One call to an in-process provider (`sim/`, `replay/`) under the same limits, without
        litellm: the registered handler answers directly (no logging callbacks, no cost map, no
        response object), its simulated latency is awaited under the per-call timeout, and the
        cost is the pool's prices. Bad input still raises the provider's marked error."""
        state = self._loop_state()
        async with state.global_sem, state.model_sems[spec.name]:
            await self._pace(spec, state)
            self.stats.attempts += 1
            start = time.perf_counter()
            handler = self._handlers[spec.provider]
            text, prompt, completion, wait_ms, *recorded = handler.answer(
                spec.litellm_model.split("/", 1)[1], kwargs["messages"], kwargs["metadata"], kwargs["optional"])
            if wait_ms > 0:
                await asyncio.wait_for(asyncio.sleep(wait_ms / 1000.0), timeout=self.config.timeout_s)
            latency_ms = (time.perf_counter() - start) * 1000.0
        self.stats.calls += 1
        cost = spec.cost(int(prompt), int(completion))
        if spec.cost_source == "recorded":  # the outcome table's cost of this model on this question
            if not recorded or recorded[0] is None:
                raise UserError(f"model {spec.name}: `cost: recorded`, but its outcome table records no cost "
                                f"(question {request.metadata.get('question_id')!r}); price it per token instead")
            cost = float(recorded[0])
        return LLMRecord(key=key, model=spec.name, text=text, prompt_tokens=int(prompt),
                         completion_tokens=int(completion), cost_usd=cost,
                         latency_ms=latency_ms, cache_hit=False, created_at=time.time(),
                         litellm_model=spec.litellm_model)

    def _in_process_kwargs(self, spec: ModelSpec, request: LLMRequest) -> dict[str, Any]:
        """What an in-process provider reads of a call: the messages, the call metadata (as
        litellm would pass it) and the optional params (`sim_model`, `hieramas_backend`)."""
        self._register_provider(spec)
        meta = {**request.metadata, "sample_index": request.sample_index, "pool_model": spec.name}
        return {"messages": request.messages, "metadata": meta, "optional": self._provider_params(spec)}

    def _kwargs(self, spec: ModelSpec, request: LLMRequest) -> dict[str, Any]:
        """The litellm call: sample index stripped, metadata under `hieramas`, key from env."""
        self._register_provider(spec)
        metadata = {**request.metadata, "sample_index": request.sample_index, "pool_model": spec.name}
        kwargs: dict[str, Any] = self._provider_params(spec)
        kwargs.update(model=spec.litellm_model, messages=[dict(m) for m in request.messages],
                      temperature=request.temperature, timeout=self.config.timeout_s,
                      max_retries=0, metadata={"hieramas": metadata}, **request.params)
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if spec.extra.get("api_base"):
            kwargs["api_base"] = spec.extra["api_base"]
        env = spec.extra.get("api_key_env")
        if env:
            if not os.environ.get(env):
                raise UserError(f"model {spec.name}: environment variable {env} is not set "
                                f"(the pool's extra.api_key_env names it)")
            kwargs["api_key"] = os.environ[env]
        return kwargs

    def _provider_params(self, spec: ModelSpec) -> dict[str, Any]:
        """The pool's `extra.litellm_params`, plus `hieramas_backend` (the backend settings) for
        the in-process providers: what the provider reads besides the request, hence part of the
        cache key of their calls."""
        params = dict(spec.extra.get("litellm_params") or {})
        if spec.provider in OFFLINE_PROVIDERS:
            backend = self.backend
            if self._backend_params[0] is not backend:  # plain dicts made once per settings object
                self._backend_params = (backend, {p: backend.for_provider(p) for p in OFFLINE_PROVIDERS})
            params[BACKEND_KWARG] = self._backend_params[1][spec.provider]
        return params

    def _record(self, spec: ModelSpec, request: LLMRequest, key: str, response: Any,
                latency_ms: float) -> LLMRecord:
        try:
            text = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise MalformedResponse(f"no message in the response ({exc})") from exc
        if not isinstance(text, str):
            raise MalformedResponse("the response message has no text content")
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if prompt is None or completion is None:  # some servers omit usage: count locally
            prompt, completion = _prompt_tokens(spec, request), _count_text(spec, text)
        self.stats.calls += 1
        return LLMRecord(key=key, model=spec.name, text=text, prompt_tokens=int(prompt),
                         completion_tokens=int(completion),
                         cost_usd=_cost(spec, response, int(prompt), int(completion)),
                         latency_ms=latency_ms, cache_hit=False, created_at=time.time(),
                         litellm_model=spec.litellm_model)

    # -- limits, retries, providers ------------------------------------------------------------
    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(self.config)
        return self._state

    async def _pace(self, spec: ModelSpec, state: _LoopState) -> None:
        """Space calls to one model 60/rpm seconds apart."""
        rpm = spec.extra.get("rpm", self.config.rpm)
        if not rpm:
            return
        async with state.pace_locks[spec.name]:
            now = time.monotonic()
            slot = self._next_slot[spec.name]
            if slot > now:
                await self._sleep(slot - now)
            self._next_slot[spec.name] = max(now, slot) + 60.0 / float(rpm)

    def _backoff(self, attempt: int, exc: BaseException) -> float:
        """Full jitter on base * 2**attempt (capped); at least the server's Retry-After."""
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * (2 ** attempt))
        delay = self._rng.uniform(0.0, cap)
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            delay = retry_after + self._rng.uniform(0.0, min(cap, 1.0))
        return delay

    def _register_provider(self, spec: ModelSpec) -> Any:
        """Register the provider of `spec` through the entry-point group `hieramas_gnn.providers`
        (the offline backends and the test `faults` provider are registered there, as a user's
        own provider would be) on first use; returns its handler when it answers in this process
        (has `answer(...)`), else None (calls go through litellm)."""
        provider = spec.provider
        if provider not in self._registered:
            entry = provider_entry_point(provider)
            if entry is None and provider in OFFLINE_PROVIDERS:
                raise UserError(f"model {spec.name}: no {provider}/ provider is registered (entry-point group "
                                f"{PROVIDER_GROUP}; install the package: pip install -e .)")
            if entry is not None:
                entry.load()(self.pool)
            self._handlers[provider] = registered_handler(provider)
            self._registered.add(provider)
        handler = self._handlers.get(provider)
        return handler if callable(getattr(handler, "answer", None)) else None


def provider_entry_point(provider: str) -> Any:
    """The entry point of group `hieramas_gnn.providers` named `provider` (its `register(pool)`
    puts the handler in `litellm.custom_provider_map`), or None."""
    from importlib.metadata import entry_points

    return next((ep for ep in entry_points(group=PROVIDER_GROUP) if ep.name == provider), None)


def registered_handler(provider: str) -> Any:
    """The in-process handler of `provider` (`llm.handlers`), else the one
    `litellm.custom_provider_map` holds, or None."""
    handler = handlers.get(provider)
    if handler is not None:
        return handler
    import litellm  # the map lives in litellm; only reached for a provider registered there

    return next((e["custom_handler"] for e in litellm.custom_provider_map or () if e.get("provider") == provider), None)


DEFAULT_MAX_INPUT_TOKENS = 1_000_000
"""Context assumed for a model with no known limit (sim/, replay/, unlisted local models)."""


def max_input_tokens(spec: ModelSpec) -> int:
    """The model's context in tokens: the pool's `extra.max_input_tokens`, else litellm's cost
    map for real providers, else DEFAULT_MAX_INPUT_TOKENS."""
    given = spec.extra.get("max_input_tokens")
    if isinstance(given, int) and not isinstance(given, bool) and given > 0:
        return given
    if spec.provider not in IN_PROCESS and spec.provider != "faults":
        import litellm

        info = litellm.model_cost.get(spec.litellm_model) or litellm.model_cost.get(spec.litellm_model.split("/", 1)[-1])
        listed = (info or {}).get("max_input_tokens")
        if isinstance(listed, int) and listed > 0:
            return listed
    return DEFAULT_MAX_INPUT_TOKENS


def _retryable(exc: BaseException) -> bool:
    import litellm

    if isinstance(exc, (asyncio.TimeoutError, MalformedResponse, litellm.Timeout,
                        litellm.APIConnectionError, litellm.RateLimitError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in _RETRY_STATUS or status >= 500)


def _retry_after_s(exc: BaseException) -> float | None:
    """Seconds from `retry-after-ms` / `Retry-After` (seconds or an HTTP date), else None."""
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    if headers.get("retry-after-ms"):
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return redact(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")


def _cost(spec: ModelSpec, response: Any, prompt: int, completion: int) -> float:
    """litellm's cost when it lists the model string itself; the pool's prices otherwise
    (custom providers, and models priced under a `cost_map_key` or in the YAML)."""
    if spec.price_source == "litellm" and litellm_prices(spec.litellm_model) is not None:
        import litellm

        try:
            cost = litellm.completion_cost(completion_response=response, model=spec.litellm_model)
            if cost is not None:
                return float(cost)
        except Exception:  # noqa: BLE001 - litellm could not price this response: pool prices
            pass
    return spec.cost(prompt, completion)


def _prompt_tokens(spec: ModelSpec, request: LLMRequest) -> int:
    import litellm

    try:
        return int(litellm.token_counter(model=spec.litellm_model, messages=list(request.messages)))
    except Exception:  # noqa: BLE001 - unknown tokenizer: a generous character bound
        return sum(len(str(m.get("content", ""))) for m in request.messages) // 2 + 8


def _count_text(spec: ModelSpec, text: str) -> int:
    import litellm

    try:
        return int(litellm.token_counter(model=spec.litellm_model, text=text))
    except Exception:  # noqa: BLE001
        return len(text) // 2 + 1
