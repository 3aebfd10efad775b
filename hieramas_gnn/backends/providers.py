"""Register the offline backends (`replay/`, `sim/`) as litellm custom providers.

`register_offline_providers()` is idempotent: it adds (or replaces) only the `replay` and `sim`
entries of `litellm.custom_provider_map`, keeps every other entry, and reuses the provider
objects already registered (so their lazily loaded figures are loaded once per process). Once
they are registered, calling it again (another client, another pool) does not touch the map at
all, so calls in flight in other clients never see it swapped. `LLMClient` calls it when it is
built, before its first call; with a pool that has sim models it also loads the simulator's
figures then, so the first calls do not stall inside their per-call timeouts.
Bad input (unknown model or question, missing call metadata) is raised by the providers as
`input_error(...)`, a non-retryable `litellm.BadRequestError` the client turns into
`ProviderInputError` at once (a plain exception would reach the client as a retryable
`APIConnectionError`, i.e. seconds of backoff before a vague failure).
Passing a `pool` also registers the sim models that pool defines inline
(`extra.litellm_params.sim_model`), which the sim provider also reads from each call.
"""

from __future__ import annotations

import logging
from typing import Any

OFFLINE = ("replay", "sim")
_log = logging.getLogger(__name__)


def register_offline_providers(pool: Any = None, *, sim_config: Any = None, replay_tables: Any = None,
                               warm_litellm: bool = True) -> dict:
    """Make `replay/<model>` and `sim/<model>` callable through litellm; returns the handlers.

    sim_config:    the `SimConfig` of calls that carry no settings (default `SimConfig()`);
                   given, it replaces an existing sim handler. A client sends its own
                   `ClientConfig.backend` settings with every call (`hieramas_backend`).
    replay_tables: {task: [outcome table paths]} for replay (default: the shared data tables);
                   given, it replaces an existing replay handler.
    warm_litellm:  with a sim pool, also make one warm-up call through litellm (False from
                   `LLMClient`, which calls the handlers directly and never pays litellm's
                   first-call work).
    """
    from hieramas_gnn.paths import ensure_offline_defaults

    ensure_offline_defaults()
    import litellm

    from hieramas_gnn.backends.replay import make_provider as make_replay
    from hieramas_gnn.backends.sim import make_provider as make_sim

    current = {e.get("provider"): e for e in (litellm.custom_provider_map or [])}
    handlers = {p: current[p]["custom_handler"] for p in OFFLINE if p in current}
    changed = False
    if "sim" not in handlers or sim_config is not None:
        handlers["sim"], changed = make_sim(sim_config), True
    if "replay" not in handlers or replay_tables is not None:
        handlers["replay"], changed = make_replay(replay_tables), True
    if pool is not None:
        _register_pool_models(handlers["sim"], pool)
    if changed:  # else leave the map (and the handlers of calls in flight) exactly as it is
        others = [e for e in (litellm.custom_provider_map or []) if e.get("provider") not in OFFLINE]
        litellm.custom_provider_map = others + [{"provider": p, "custom_handler": handlers[p]} for p in OFFLINE]
    if changed or any(p not in getattr(litellm, "_custom_providers", OFFLINE) for p in OFFLINE):
        _refresh_litellm(litellm)
    if pool is not None:
        _warm_sim(litellm, handlers["sim"], pool, warm_litellm)
    return handlers


def offline_handler(provider: str) -> Any:
    """The handler registered in litellm for `provider` (`sim` or `replay`): the one a
    `litellm.completion("sim/...")` would reach, which `LLMClient` calls directly."""
    import litellm

    for entry in litellm.custom_provider_map or ():
        if entry.get("provider") == provider:
            return entry["custom_handler"]
    return register_offline_providers()[provider]


def per_call(provider: str, model: str, make: Any, settings: Any) -> Any:
    """The backend object for one call's `hieramas_backend` settings (`make(settings)`); bad
    settings become `input_error` (never retried)."""
    from hieramas_gnn.errors import UserError

    try:
        return make(settings)
    except TypeError as exc:  # unknown or missing fields in the per-call settings
        raise input_error(provider, model, UserError(f"bad hieramas_backend settings ({exc})")) from exc
    except UserError as exc:
        raise input_error(provider, model, exc) from exc


def input_error(provider: str, model: str, exc: BaseException) -> Exception:
    """The exception an offline provider raises for bad input `exc` (a UserError): a
    `litellm.BadRequestError` (passed through litellm unchanged, status 400, never retried)
    marked with `ProviderInputError.MARK` so the client raises `ProviderInputError`."""
    import litellm

    from hieramas_gnn.llm.types import ProviderInputError

    err = litellm.BadRequestError(message=f"{provider}/{model}: {exc}", model=f"{provider}/{model}",
                                  llm_provider=provider)
    setattr(err, ProviderInputError.MARK, str(exc))
    return err


def _warm_sim(litellm: Any, handler: Any, pool: Any, warm_litellm: bool = True) -> None:
    """Pay the first-call costs now, outside any call's timeout: the simulator's figures, and
    litellm's own lazy work on its first call in a process (imports and pydantic model builds in
    its worker thread, ~0.6 s on an idle machine, more on a loaded one), which otherwise lands
    inside the per-call timeout of every call in flight at the start of a run. One synchronous
    call to the pool's first sim model on a synthetic question: free, cached nowhere, not a
    pool call (the client's `acompletion` stays the only call site for real requests)."""
    spec = next((s for s in pool if s.provider == "sim"), None)
    if spec is None or getattr(handler, "warmed", False):
        return
    handler.sim.warm()
    if not warm_litellm:
        return
    try:
        litellm.completion(model=spec.litellm_model, messages=[{"role": "user", "content": "warm-up"}],
                           metadata={"hieramas": {"task": "synthetic", "question_id": "synthetic/arithmetic/0/0"}},
                           max_retries=0, **(spec.extra.get("litellm_params") or {}))
    except Exception as exc:  # noqa: BLE001 - a real call will report the problem with context
        _log.warning("sim warm-up call to %s failed (the first real calls may be slow): %s", spec.name, exc)
    handler.warmed = True


def _register_pool_models(handler: Any, pool: Any) -> None:
    for spec in pool:
        inline = (spec.extra.get("litellm_params") or {}).get("sim_model")
        if spec.provider == "sim" and inline:
            name = spec.litellm_model.split("/", 1)[1]
            handler.register(handler.figures.make_spec(name, dict(inline), f"pool {pool.name}"))


def _refresh_litellm(litellm: Any) -> None:
    """litellm reads the map into its provider list on this call (documented custom-provider setup)."""
    try:
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    except ImportError:  # older/newer litellm: the map is read at call time
        pass
