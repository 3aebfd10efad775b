"""The handlers of the providers answered in this process (`sim/`, `replay/`), by provider name.

The offline providers put their handlers here when they register, and `LLMClient` finds them here
and calls them directly, so a process whose pool has only offline models never has to import
litellm (seconds of import time in every command). Each handler also has a litellm face
(`handler.litellm_handler()`, a `litellm.CustomLLM`) that `to_litellm` puts into
`litellm.custom_provider_map`: at registration when litellm is already imported, and before the
client's first call through litellm, so `litellm.completion("sim/...")` answers the same.
"""

from __future__ import annotations

import sys
from typing import Any

_HANDLERS: dict[str, Any] = {}


def get(provider: str) -> Any | None:
    """The handler registered for `provider`, or None."""
    return _HANDLERS.get(provider)


def put(provider: str, handler: Any) -> None:
    """Register `handler` for `provider` (replacing any other), and in litellm's map when litellm
    is already imported."""
    _HANDLERS[provider] = handler
    if litellm_imported():
        to_litellm(provider)


def litellm_imported() -> bool:
    return "litellm" in sys.modules


def to_litellm(*providers: str) -> None:
    """Put the litellm face of these providers' handlers (all registered ones by default) into
    `litellm.custom_provider_map`. The map is left exactly as it is when it already holds them,
    so calls in flight never see it swapped; other providers' entries are kept."""
    import litellm

    names = [p for p in (providers or tuple(_HANDLERS)) if p in _HANDLERS]
    faces = {p: _HANDLERS[p].litellm_handler() for p in names}
    current = {e.get("provider"): e.get("custom_handler") for e in litellm.custom_provider_map or ()}
    changed = [p for p in names if current.get(p) is not faces[p]]
    if changed:
        others = [e for e in litellm.custom_provider_map or () if e.get("provider") not in changed]
        litellm.custom_provider_map = others + [{"provider": p, "custom_handler": faces[p]} for p in changed]
    if changed or any(p not in getattr(litellm, "_custom_providers", names) for p in names):
        _refresh_litellm()


def _refresh_litellm() -> None:
    """litellm reads the map into its provider list on this call (documented custom-provider setup)."""
    try:
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    except ImportError:  # older/newer litellm: the map is read at call time
        pass
