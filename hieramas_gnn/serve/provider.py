"""The litellm custom provider `hieramas/<bundle-name>`: a learned MAS as one more litellm model.

    from hieramas_gnn.serve.provider import register_policy_provider
    register_policy_provider("runs/bundles")        # folder holding bundles, one per sub-folder
    litellm.completion(model="hieramas/demo", messages=[{"role": "user", "content": "..."}])

`<bundle-name>` is a folder name under the bundle folder (`folder/<name>/policy.json`, or a run
folder `folder/<name>/policy/policy.json`). The folder is `register_policy_provider(folder)`'s, else
the env var `HIERAMAS_POLICY_DIR`, else `runs`. Each bundle is loaded once per process (a
`serve.policy.Policy` with `policy_options`: cache, cache_mode, pool, client, backend) and runs
in-process: the last user message is the question, the reply is the decision model's answer,
`usage` sums the tokens of every call of the MAS, and `response.hieramas` (also
`response._hidden_params["hieramas"]`) holds the design, the answer and the per-call costs.

In a LiteLLM Proxy config the same handler object is named by its import path:

    model_list:
      - model_name: hieramas-demo
        litellm_params: {model: hieramas/demo}
    litellm_settings:
      custom_provider_map:
        - {provider: hieramas, custom_handler: hieramas_gnn.serve.provider.handler}

(set `HIERAMAS_POLICY_DIR` in the proxy's environment). `handler` is created at import and loads
nothing until its first call.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import litellm

from hieramas_gnn.backends.providers import model_response, register_offline_providers
from hieramas_gnn.errors import UserError
from hieramas_gnn.serve.policy import Policy

PROVIDER = "hieramas"


class PolicyProvider(litellm.CustomLLM):
    """Answers `hieramas/<name>` by running bundle `<name>` (module docstring)."""

    def __init__(self, folder: str | Path | None = None, **policy_options: Any) -> None:
        super().__init__()
        self.folder = None if folder is None else Path(folder)
        self.policy_options = policy_options
        self.policies: dict[str, Any] = {}
        self._lock = threading.Lock()

    def bundle_path(self, name: str) -> Path:
        """Where bundle `name` is (UserError listing the bundles when it is not there)."""
        folder = self.folder or Path(os.environ.get("HIERAMAS_POLICY_DIR") or "runs")
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise UserError(f"{PROVIDER}/{name}: a bundle name is one folder name")
        for path in (folder / name, folder / name / "policy"):
            if (path / "policy.json").is_file():
                return path
        found = sorted(p.parent.name for p in folder.glob("*/policy.json")) if folder.is_dir() else []
        raise UserError(f"{PROVIDER}/{name}: no policy bundle {name!r} in {folder} "
                        f"(found: {', '.join(found) or 'none'}; set HIERAMAS_POLICY_DIR)")

    def policy(self, name: str) -> Any:
        """The loaded `Policy` of bundle `name` (loaded once)."""
        with self._lock:
            if name not in self.policies:
                options = {"name": name} | self.policy_options
                self.policies[name] = Policy.load(self.bundle_path(name), **options)
            return self.policies[name]

    def _bad(self, model: str, exc: BaseException) -> Exception:
        return litellm.BadRequestError(message=f"{PROVIDER}/{model}: {exc}", model=f"{PROVIDER}/{model}",
                                       llm_provider=PROVIDER)

    def _question(self, model: str, messages: list) -> str:
        from hieramas_gnn.serve.app import (  # lazy: loads fastapi
            ApiError,
            last_user_message,
        )  # lazy: loads fastapi

        try:
            return last_user_message({"messages": messages})
        except ApiError as exc:
            raise self._bad(model, exc.message) from None

    def _response(self, model: str, sol: Any) -> Any:
        if sol.failed:
            raise litellm.APIError(status_code=502, message=f"{PROVIDER}/{model}: the MAS failed: "
                                   f"{sol.failure_reason}", llm_provider=PROVIDER, model=f"{PROVIDER}/{model}")
        resp = model_response(f"{PROVIDER}/{model}", sol.text or sol.answer or "", sol.prompt_tokens,
                              sol.completion_tokens)
        info = {"design": sol.design, "answer": sol.answer, "correct": sol.correct, "cost_usd": sol.cost_usd,
                "question_id": sol.question_id, "calls": sol.trace["calls"]}
        resp._hidden_params["hieramas"] = info
        setattr(resp, "hieramas", info)
        return resp

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        question = self._question(model, messages)
        try:
            policy = await asyncio.to_thread(self.policy, model)
            sol = await policy.asolve(question)
        except UserError as exc:
            raise self._bad(model, exc) from None
        return self._response(model, sol)

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        question = self._question(model, messages)
        try:
            policy = self.policy(model)
            sol = _in_own_loop(policy.asolve(question))
        except UserError as exc:
            raise self._bad(model, exc) from None
        return self._response(model, sol)


def _in_own_loop(coro: Any) -> Any:
    """Run `coro` to completion from sync code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["v"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["e"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


handler = PolicyProvider()
"""The process-wide handler (what a LiteLLM Proxy config names)."""


def register_policy_provider(folder: str | Path | None = None, **policy_options: Any) -> PolicyProvider:
    """Register `hieramas/<bundle-name>` with litellm (replacing an earlier `hieramas` entry,
    keeping every other provider). `folder`: where the bundles are (default: env
    `HIERAMAS_POLICY_DIR`, else `runs`); `policy_options`: `Policy.load` keyword arguments.
    Without either, the module's `handler` (the one a proxy config names) is registered."""
    register_offline_providers()  # the bundles' sim/replay models must resolve too
    provider = PolicyProvider(folder, **policy_options) if folder is not None or policy_options else handler
    others = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
    litellm.custom_provider_map = others + [{"provider": PROVIDER, "custom_handler": provider}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    return provider
