"""A test-only litellm custom provider, `faults/<mode>`, that fails on purpose and then succeeds.

Modes (the part after `faults/`):
- `succeed`:    answer at once, deterministically (`echo: <last message>`);
- `slow`:       answer after `delay_s` seconds (lets a test kill a process mid-run);
- `ratelimit`:  raise a 429 with a `Retry-After` header (`retry_after_s`);
- `error500`:   raise a 500;
- `timeout`:    hang for `hang_s` seconds (longer than the client's timeout), then answer;
- `malformed`:  answer with a body that has no message content;
- `down`:       fail with a 500 every time.

Each failing mode fails the first `fail_times` attempts of each request (counted per request in
the provider instance: no global state), then answers like `succeed`. `calls` counts every
attempt and `answers` the successful ones, so tests can assert retries and the absence of calls.

The client registers a default instance on first use of a `faults/` model (`register`); a test
that needs other settings registers its own instance with `register(FaultProvider(...))`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from typing import Any

MODES = ("succeed", "slow", "ratelimit", "error500", "timeout", "malformed", "down")


class FaultProvider:
    """Factory of the litellm `CustomLLM` handler (litellm is imported only when built)."""

    def __new__(cls, fail_times: int = 2, retry_after_s: float = 0.05, hang_s: float = 30.0,
                delay_s: float = 0.05):
        from litellm import CustomLLM

        class _FaultLLM(CustomLLM):
            __doc__ = FaultProvider.__doc__

            def __init__(self) -> None:
                super().__init__()
                self.fail_times = fail_times
                self.retry_after_s = retry_after_s
                self.hang_s = hang_s
                self.delay_s = delay_s
                self.calls = 0
                self.answers = 0
                self.attempts: Counter[str] = Counter()  # per-request attempt counters
                self.seen_metadata: list[dict[str, Any]] = []
                self._lock = threading.Lock()

            async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return await _answer(self, model, messages, kwargs)

            def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return asyncio.run(_answer(self, model, messages, kwargs))

        return _FaultLLM()


def _request_id(model: str, messages: list, metadata: dict[str, Any]) -> str:
    body = json.dumps([model, messages, metadata.get("sample_index", 0)], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


async def _answer(handler: Any, model: str, messages: list, kwargs: dict[str, Any]):
    import litellm

    mode = model.split("/")[-1]
    if mode not in MODES:
        raise litellm.BadRequestError(f"faults: unknown mode {mode!r} (one of {MODES})",
                                      model=model, llm_provider="faults")
    metadata = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("hieramas") or {}
    rid = _request_id(model, messages, metadata)
    with handler._lock:
        handler.calls += 1
        handler.attempts[rid] += 1
        attempt = handler.attempts[rid]
        handler.seen_metadata.append(dict(metadata))
    failing = mode == "down" or (mode not in ("succeed", "slow") and attempt <= handler.fail_times)
    if failing:
        return await _fail(handler, mode, model)
    if mode == "slow":
        await asyncio.sleep(handler.delay_s)
    with handler._lock:
        handler.answers += 1
    return _response(model, messages)


async def _fail(handler: Any, mode: str, model: str):
    import httpx
    import litellm

    request = httpx.Request("POST", "http://faults.invalid/v1/chat/completions")
    if mode == "ratelimit":
        response = httpx.Response(429, headers={"retry-after": f"{handler.retry_after_s:g}"},
                                  request=request)
        raise litellm.RateLimitError("faults: rate limited", llm_provider="faults", model=model,
                                     response=response)
    if mode in ("error500", "down"):
        raise litellm.InternalServerError("faults: internal error", llm_provider="faults",
                                          model=model, response=httpx.Response(500, request=request))
    if mode == "timeout":
        await asyncio.sleep(handler.hang_s)
        return _response(model, [])
    # malformed: a body without message content and without usage
    return litellm.ModelResponse(model=model, choices=[{"message": {"role": "assistant", "content": None}}])


def _response(model: str, messages: list):
    import litellm

    last = str(messages[-1].get("content", "")) if messages else ""
    text = f"echo: {last}"
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion_tokens = len(text.split())
    return litellm.ModelResponse(
        model=model, choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
               "total_tokens": prompt_tokens + completion_tokens})


def register(handler: Any | None = None) -> Any:
    """Put `handler` (default: a new FaultProvider()) in litellm's map as `faults`; returns it."""
    import litellm

    handler = handler if handler is not None else FaultProvider()
    entries = [e for e in litellm.custom_provider_map if e.get("provider") != "faults"]
    litellm.custom_provider_map = entries + [{"provider": "faults", "custom_handler": handler}]
    return handler


def registered() -> Any | None:
    """The handler registered as `faults`, or None."""
    import litellm

    for entry in litellm.custom_provider_map:
        if entry.get("provider") == "faults":
            return entry["custom_handler"]
    return None


def register_provider(pool: Any = None) -> Any:
    """The entry point of the `faults` provider (group `hieramas_gnn.providers`): registers a
    default `FaultProvider` unless a test already registered its own; returns the handler."""
    return registered() or register()
