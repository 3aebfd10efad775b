"""The offline backends (`sim/`, `replay/`) as litellm custom providers: one base class.

`OfflineProvider` is a provider over a pure backend (`Simulator`, `Replayer`) that
answers from a call's metadata (task, question id, role, context answers). Each call may carry
`hieramas_backend`, the backend settings `LLMClient` sends (`llm.types.SimSettings` /
`ReplaySettings` as a dict, part of the call's cache key): the provider keeps one backend per
distinct settings, sharing the loaded figures or tables. `SimProvider` and `ReplayProvider` only
say how a backend is built and asked.

Registration goes through the same entry-point group a user's own provider would use,
`hieramas_gnn.providers` (pyproject.toml; `register(pool)` returns the handlers). The handlers are
kept in `llm.handlers`, where `LLMClient` finds them and calls `answer(...)` directly (no litellm
per-call work, and no litellm import for a pool of offline models); each handler's litellm face
(`litellm_handler()`, a `litellm.CustomLLM` built on first use) goes into
`litellm.custom_provider_map` once litellm is imported, so `litellm.completion("sim/...")` reaches
the same handler.

`register_offline_providers()` is idempotent: it adds (or replaces) only the `replay` and `sim`
handlers, keeps every other provider and reuses the handlers already registered (their lazily
loaded figures are loaded once per process); once registered, calling it again does not touch
litellm's map, so calls in flight in other clients never see it swapped.
Bad input (unknown model or question, missing call metadata, bad settings) raises
`input_error(...)`, a non-retryable `litellm.BadRequestError` the client turns into
`ProviderInputError` at once (a plain exception would reach the client as a retryable
`APIConnectionError`, i.e. seconds of backoff before a vague failure).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from hieramas_gnn.backends.replay import Replayer
from hieramas_gnn.backends.sim import Simulator
from hieramas_gnn.backends.simdata import SimFigures
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm import handlers as registry
from hieramas_gnn.llm.types import ProviderInputError, ReplaySettings, SimSettings, settings_fields
from hieramas_gnn.paths import ensure_offline_defaults

OFFLINE = ("replay", "sim")
SETTINGS_KWARG = "hieramas_backend"  # the litellm kwarg carrying a call's backend settings
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What an offline provider answers to one call."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float = 0.0
    """Simulated latency to await (0 for replay)."""
    recorded_cost: float | None = None
    """The outcome table's cost of this call (replay of recorded outcomes), or None."""


class OfflineProvider:
    """A provider answering from a pure backend, one backend per distinct call settings; its
    litellm face (`litellm_handler()`) answers `litellm.completion` / `acompletion` the same.

    Subclasses set `provider` and `settings_type` and implement `build(settings)` (the backend of
    these settings, sharing what `default` loaded) and `ask(backend, model, meta, chars, optional)`.
    """

    provider: str = ""
    settings_type: type = object

    def __init__(self, default: Any) -> None:
        self.default = default
        self._backends: dict[Any, Any] = {}
        self._litellm: Any = None

    def litellm_handler(self) -> Any:
        """This provider as a `litellm.CustomLLM` (imports litellm; built once)."""
        if self._litellm is None:
            self._litellm = _litellm_face_class()(self)
        return self._litellm

    # -- what a subclass says -----------------------------------------------------------------
    def build(self, settings: Any) -> Any:
        raise NotImplementedError

    def ask(self, backend: Any, model: str, meta: dict, chars: int, optional: dict) -> Reply:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def backend_for(self, settings: dict | Any | None) -> Any:
        """The backend of these per-call settings (the default one for None)."""
        if settings is None:
            return self.default
        key = settings if isinstance(settings, self.settings_type) else self.settings_type(**settings_fields(settings))
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = self.build(key)
        return backend

    def reply(self, model: str, messages: Any, meta: dict, optional: dict) -> Reply:
        """The reply to one call; bad input or bad settings raise `input_error` (never retried)."""
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        try:
            backend = self.backend_for(optional.get(SETTINGS_KWARG))
        except TypeError as exc:  # unknown or missing fields in the per-call settings
            raise input_error(self.provider, model, UserError(f"bad {SETTINGS_KWARG} settings ({exc})")) from exc
        except UserError as exc:
            raise input_error(self.provider, model, exc) from exc
        try:
            return self.ask(backend, model, meta, chars, optional)
        except UserError as exc:  # bad input: fail at once, not as a retryable connection error
            raise input_error(self.provider, model, exc) from exc

    def answer(self, model: str, messages: Any, meta: dict,
               optional: dict) -> tuple[str, int, int, float, float | None]:
        """(text, prompt tokens, completion tokens, latency ms to await, recorded cost or None) of
        one call: what `LLMClient` calls directly, without litellm (the same reply as through
        litellm); the client prices the call at the recorded cost when the pool model says
        `cost: recorded`."""
        r = self.reply(model, messages, meta, optional)
        return r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms, r.recorded_cost

    def _respond(self, model: str, messages: list, kwargs: dict) -> tuple[Any, float]:
        meta = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("hieramas") or {}
        r = self.reply(model, messages, meta, kwargs.get("optional_params") or {})
        response = model_response(f"{self.provider}/{model}", r.text, r.prompt_tokens, r.completion_tokens)
        if r.recorded_cost is not None:
            response._hidden_params["response_cost"] = r.recorded_cost  # the recorded cost of this call
        return response, r.latency_ms

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):
        response, latency_ms = self._respond(model, messages, kwargs)
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000.0)
        return response

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
        """Synchronous litellm.completion: same reply, no simulated wait."""
        return self._respond(model, messages, kwargs)[0]


class SimProvider(OfflineProvider):
    """`sim/<model>`: the simulator (`backends/sim.py`); models a pool defines inline
    (`extra.litellm_params.sim_model`) are registered on every simulator."""

    provider = "sim"
    settings_type = SimSettings

    def __init__(self, settings: SimSettings | None = None, figures: SimFigures | None = None) -> None:
        self.figures = figures or SimFigures()
        super().__init__(Simulator(settings, self.figures))
        self._registered: dict[str, Any] = {}
        self.warmed = False

    @property
    def sim(self) -> Simulator:
        """The simulator of calls that carry no settings."""
        return self.default

    def build(self, settings: SimSettings) -> Simulator:
        sim = Simulator(settings, self.figures)
        for spec in self._registered.values():
            sim.register(spec)
        return sim

    def register(self, spec: Any) -> None:
        """Add a model defined outside the catalogue to every simulator (now and later)."""
        self._registered[spec.name] = spec
        for sim in (self.default, *self._backends.values()):
            sim.register(spec)

    def ask(self, backend: Simulator, model: str, meta: dict, chars: int, optional: dict) -> Reply:
        r = backend.reply(model, meta, chars, optional.get("sim_model"))  # pure and fast after the first load
        return Reply(r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms)


class ReplayProvider(OfflineProvider):
    """`replay/<model>`: real answers from outcome tables (`backends/replay.py`); a pool model's
    `extra.litellm_params.replay_table` names its own table."""

    provider = "replay"
    settings_type = ReplaySettings

    def __init__(self, tables: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.tables = tables
        super().__init__(Replayer(tables, seed=seed))

    @property
    def replayer(self) -> Replayer:
        """The replayer of calls that carry no settings."""
        return self.default

    def backend_for(self, settings: dict | Any | None) -> Any:
        key = settings if settings is None or isinstance(settings, ReplaySettings) else ReplaySettings(
            **settings_fields(settings))
        if key is None or (key.seed == self.default.seed and key.wrong_answers == self.default.wrong_answers):
            return self.default
        return super().backend_for(key)

    def build(self, settings: ReplaySettings) -> Replayer:
        rep = Replayer(self.tables, seed=settings.seed, shared=self.default.shared,
                       wrong_answers=settings.wrong_answers)
        if settings.wrong_answers == self.default.wrong_answers:
            rep._tables = self.default._tables  # the loaded outcome tables do not depend on the seed
        return rep

    def ask(self, backend: Replayer, model: str, meta: dict, chars: int, optional: dict) -> Reply:
        text, prompt, completion, cost = backend.call(model, meta, chars, optional.get("replay_table"),
                                                      optional.get("replay_models"))
        return Reply(text, prompt, completion, 0.0, cost)


def register(pool: Any = None) -> OfflineProvider | dict[str, OfflineProvider]:
    """The entry point of the `sim` and `replay` providers (group `hieramas_gnn.providers`):
    registers both (in litellm's map too once litellm is imported) and returns the handlers by
    provider name."""
    return register_offline_providers(pool, warm_litellm=False)


def register_offline_providers(pool: Any = None, *, sim_settings: SimSettings | None = None,
                               replay_tables: Any = None, warm_litellm: bool = True) -> dict[str, OfflineProvider]:
    """Make `replay/<model>` and `sim/<model>` callable through litellm; returns the handlers.

    sim_settings:  the simulator of calls that carry no settings (default `SimSettings()`);
                   given, it replaces an existing sim handler. A client sends its own backend
                   settings with every call (`hieramas_backend`).
    replay_tables: {task: [outcome table paths]} for replay (default: the shared data tables);
                   given, it replaces an existing replay handler.
    warm_litellm:  with a sim pool, also make one warm-up call through litellm (False from
                   `LLMClient`, which calls the handlers directly and never pays litellm's
                   first-call work).
    Passing a `pool` also registers the sim models that pool defines inline.
    """
    ensure_offline_defaults()
    handlers = {p: registry.get(p) for p in OFFLINE if registry.get(p) is not None}
    if "sim" not in handlers or sim_settings is not None:
        handlers["sim"] = SimProvider(sim_settings)
        registry.put("sim", handlers["sim"])
    if "replay" not in handlers or replay_tables is not None:
        handlers["replay"] = ReplayProvider(replay_tables)
        registry.put("replay", handlers["replay"])
    if pool is not None:
        _register_pool_models(handlers["sim"], pool)
    if registry.litellm_imported():  # a user of litellm gets the handlers in its map now
        registry.to_litellm(*OFFLINE)
    if pool is not None:
        _warm_sim(handlers["sim"], pool, warm_litellm)
    return handlers


def input_error(provider: str, model: str, exc: BaseException) -> Exception:
    """The exception an offline provider raises for bad input `exc` (a UserError): a
    `litellm.BadRequestError` (passed through litellm unchanged, status 400, never retried)
    marked with `ProviderInputError.MARK` so the client raises `ProviderInputError`."""
    import litellm  # lazy: only bad input reaches here on the in-process path

    err = litellm.BadRequestError(message=f"{provider}/{model}: {exc}", model=f"{provider}/{model}",
                                  llm_provider=provider)
    setattr(err, ProviderInputError.MARK, str(exc))
    return err


def model_response(model: str, text: str, prompt_tokens: int, completion_tokens: int) -> Any:
    """A litellm `ModelResponse` with one assistant message and its usage."""
    import litellm  # lazy: only calls through litellm build responses

    return litellm.ModelResponse(
        model=model, choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
               "total_tokens": prompt_tokens + completion_tokens})


def _warm_sim(handler: SimProvider, pool: Any, warm_litellm: bool = True) -> None:
    """Pay the first-call costs now, outside any call's timeout: the simulator's figures, and
    litellm's own lazy work on its first call in a process (imports and pydantic model builds in
    its worker thread, ~0.6 s on an idle machine, more on a loaded one), which otherwise lands
    inside the per-call timeout of every call in flight at the start of a run. One synchronous
    call to the pool's first sim model on a synthetic question: free, cached nowhere, not a
    pool call (the client's `acompletion` stays the only call site for real requests)."""
    spec = next((s for s in pool if s.provider == "sim"), None)
    if spec is None or handler.warmed:
        return
    handler.sim.warm()
    if not warm_litellm:
        return
    import litellm  # lazy: the warm-up is for users calling through litellm

    registry.to_litellm("sim")
    try:
        litellm.completion(model=spec.litellm_model, messages=[{"role": "user", "content": "warm-up"}],
                           metadata={"hieramas": {"task": "synthetic", "question_id": "synthetic/arithmetic/0/0"}},
                           max_retries=0, **(spec.extra.get("litellm_params") or {}))
    except Exception as exc:  # noqa: BLE001 - a real call will report the problem with context
        _log.warning("sim warm-up call to %s failed (the first real calls may be slow): %s", spec.name, exc)
    handler.warmed = True


def _register_pool_models(handler: SimProvider, pool: Any) -> None:
    for spec in pool:
        inline = (spec.extra.get("litellm_params") or {}).get("sim_model")
        if spec.provider == "sim" and inline:
            name = spec.litellm_model.split("/", 1)[1]
            handler.register(handler.figures.make_spec(name, dict(inline), f"pool {pool.name}"))


@functools.cache
def _litellm_face_class() -> type:
    """`litellm.CustomLLM` subclass delegating to an `OfflineProvider` (built on first use, so
    importing this module does not import litellm). Attributes it does not define (`answer`,
    `sim`, `replayer`, ...) are the provider's."""
    import litellm

    class LiteLLMFace(litellm.CustomLLM):
        def __init__(self, provider: OfflineProvider) -> None:
            super().__init__()
            self.provider_handler = provider

        def __getattr__(self, name: str) -> Any:
            if name == "provider_handler":  # not set yet: no recursion
                raise AttributeError(name)
            return getattr(self.provider_handler, name)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):
            return await self.provider_handler.acompletion(model, messages, *args, **kwargs)

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
            return self.provider_handler.completion(model, messages, *args, **kwargs)

    return LiteLLMFace
