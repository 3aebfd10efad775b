"""The OpenAI-compatible HTTP API over a `Policy` (FastAPI): `create_app(policy, limits)`.

- `POST /v1/chat/completions`: the learned MAS answers the last user message. `usage` sums the
  tokens of every call of the MAS; the chosen design, the extracted answer, the grade (task
  questions only), the cost and the per-call costs are in the `hieramas` field of the response,
  and the design (compact JSON) in the `x-hieramas-design` header. `stream: true` is answered as
  server-sent events (`chat.completion.chunk`s, then `data: [DONE]`) once the MAS has finished.
  Sampling parameters (`temperature`, `max_tokens`, ...) are accepted and ignored: the MAS uses
  the settings it was trained with; `n` other than 1 and `tools` are refused.
- Cost trade-off (a cost-conditioned bundle, `policy/cost.py`): the request body's extension
  fields `cost_lambda` (the cost weight λ, 1/USD) or `max_cost_usd` (the most accurate grid
  point whose measured $/query fits), or the same as headers `X-Hieramas-Cost-Lambda` /
  `X-Hieramas-Max-Cost-Usd` (a header and a body field of the same name must agree); each a
  finite number >= 0, else 400 naming the field. What was used is in `hieramas.cost` and the
  `x-hieramas-cost-lambda` header. A bundle of one fixed λ answers 400 to either.
- Limits on the design (any bundle, `mas.limits`): body fields `max_calls` (the most LLM calls the
  design's execution can make, decision included) and `max_rounds` (the most sequential rounds
  of calls), or headers `X-Hieramas-Max-Calls` / `X-Hieramas-Max-Rounds` (same agreement rule);
  each a whole number >= 1, else 400 naming the field. The design served keeps within them;
  `hieramas.limits` reports them with the design's own `calls` and `rounds`.
- `GET /v1/models`: the one served model (`<bundle-name>`; `hieramas/<bundle-name>` also accepted).
- `POST /design` with `{"question": ..., "meta": {...}}` (and `cost_lambda` / `max_cost_usd`,
  `max_calls` / `max_rounds`) -> `{"design", "graph_score", "route"}` (+ `cost`, `limits`).
- `GET /health` -> `{"ok": true, ...}` (never behind auth, never queued).

Limits (`ServeLimits`): at most `max_concurrency` requests run the MAS at once and `queue_limit`
more wait; beyond that a request gets 429 at once. Bodies over `max_body_bytes` get 413 (from
the `Content-Length` header, before reading; or while reading a chunked body); a body that does
not arrive within `body_timeout_s` gets 408. With `api_key` set, `/v1/*` and `/design` need
`Authorization: Bearer <key>` (401 otherwise). Every error is JSON in the OpenAI format:
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.limits import check_limit

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


@dataclass(frozen=True)
class ServeLimits:
    """Admission and request limits of the server (see the module docstring)."""

    max_concurrency: int = 16
    queue_limit: int = 256
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 10.0
    api_key: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise UserError(f"serve {name} must be >= 1, got {getattr(self, name)}")
        if self.queue_limit < 0:
            raise UserError(f"serve queue_limit must be >= 0, got {self.queue_limit}")
        if self.body_timeout_s <= 0:
            raise UserError(f"serve body_timeout_s must be > 0, got {self.body_timeout_s}")


class ApiError(Exception):
    """An error answered as `{"error": {...}}` with `status`."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


class Admission:
    """At most `running` requests at once, `waiting` more queued, the rest refused (429)."""

    def __init__(self, running: int, waiting: int) -> None:
        self.capacity, self.active = running + waiting, 0
        self.sem = asyncio.Semaphore(running)

    async def __aenter__(self) -> None:
        if self.active >= self.capacity:
            raise ApiError(429, f"server busy: {self.active} requests running or queued (limit "
                           f"{self.capacity}); retry later", "rate_limit_exceeded", "queue_full")
        self.active += 1
        try:
            await self.sem.acquire()
        except BaseException:
            self.active -= 1
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.sem.release()
        self.active -= 1


async def read_json(request: Request, limits: ServeLimits) -> Any:
    """The request body as JSON, within the size and time limits (ApiError otherwise)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ApiError(400, f"invalid Content-Length header {length[:40]!r}")
        if int(length) > limits.max_body_bytes:
            raise ApiError(413, f"request body of {int(length)} bytes is over the limit of "
                           f"{limits.max_body_bytes} bytes", code="body_too_large")

    async def collect() -> bytes:
        parts, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ApiError(413, f"request body is over the limit of {limits.max_body_bytes} bytes",
                               code="body_too_large")
            parts.append(chunk)
        return b"".join(parts)

    try:
        raw = await asyncio.wait_for(collect(), limits.body_timeout_s)
    except TimeoutError:
        raise ApiError(408, f"request body not received within {limits.body_timeout_s:g} s",
                       code="request_timeout") from None
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, f"request body is nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    check_json_text(body)
    return body


MAX_JSON_DEPTH = 64
"""Deepest nesting a request body may have (an OpenAI request needs about 5)."""


def check_json_text(body: Any) -> None:
    """400 for a body nested deeper than MAX_JSON_DEPTH, or holding a string that is not valid
    Unicode (a lone UTF-16 surrogate such as `\\ud800`, which JSON's escapes allow)."""
    stack: list[tuple[Any, int]] = [(body, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, f"request body is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "request body holds a string that is not valid Unicode (a lone surrogate "
                                    "escape such as \\ud800)") from None
        elif isinstance(node, dict):
            stack.extend((k, depth + 1) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def last_user_message(body: Any) -> str:
    """The text of the last user message of a chat-completions body (ApiError naming the field)."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty array", param="messages")
    text = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}] must be an object with a 'role' in {sorted(ROLES)}",
                           param=f"messages[{i}]")
        if m["role"] == "user":
            text = _content_text(m.get("content"), i)
    if text is None or not text.strip():
        raise ApiError(400, "'messages' has no user message with text", param="messages")
    return text


def _content_text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        if any(p.get("type") != "text" or not isinstance(p.get("text"), str) for p in content):
            raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                           param=f"messages[{i}].content")
        return "\n".join(p["text"] for p in content)
    raise ApiError(400, f"messages[{i}].content must be a string or an array of text parts",
                   param=f"messages[{i}].content")


def check_chat_options(body: dict[str, Any], model_ids: set[str]) -> bool:
    """Validate `model`, `stream`, `n`, `tools`; returns `stream`."""
    model = body.get("model")
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string", param="model")
    if model not in model_ids:
        raise ApiError(404, f"model {model!r} is not served here (served: {sorted(model_ids)})",
                       code="model_not_found", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false", param="stream")
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or n != 1):
        raise ApiError(400, "'n' must be 1: the MAS gives one answer per request", param="n")
    if body.get("tools"):
        raise ApiError(400, "'tools' are not supported by the learned MAS", param="tools")
    return stream


COST_FIELDS = {"cost_lambda": "x-hieramas-cost-lambda", "max_cost_usd": "x-hieramas-max-cost-usd"}
"""The request's cost fields (body extension field -> header)."""


def body_or_header(body: dict[str, Any], headers: Any, fields: dict[str, str],
                   check: Callable[[Any, str, bool], Any]) -> dict[str, Any]:
    """Each of `fields` (body extension field -> header) from the request: `check(value, name,
    from_header)` gives the checked value (a header's is text) or raises a `UserError`, answered
    400 naming where; a field given both ways must check to the same value (else 400: give one).
    None where neither is given."""
    values: dict[str, Any] = {}
    for name, header in fields.items():
        in_body, in_header = body.get(name), headers.get(header)
        checked = {}
        for where, value, text in ((f"body field {name!r}", in_body, False), (f"header {header}", in_header, True)):
            if value is not None:
                try:
                    checked[where] = check(value, name, text)
                except UserError as exc:
                    raise ApiError(400, f"{where}: {exc}", param=name) from None
        if len(set(checked.values())) > 1:
            raise ApiError(400, f"body field {name!r} ({in_body!r}) and header {header} ({in_header[:40]!r}) "
                           "disagree; give one", param=name)
        values[name] = next(iter(checked.values()), None)
    return values


def cost_request(policy: Any, body: dict[str, Any], headers: Any) -> Any:
    """The `policy.cost.CostPick` of a request from its body fields and headers (module
    docstring); None for a bundle of one fixed λ asked for nothing. ApiError 400 naming the field."""

    def check(value: Any, name: str, text: bool) -> float:
        policy.cost_pick(**{name: value}, where="")  # the number, and that the bundle takes it
        return float(value)

    values = body_or_header(body, headers, COST_FIELDS, check)
    try:
        return policy.cost_pick(values["cost_lambda"], values["max_cost_usd"])
    except UserError as exc:
        raise ApiError(400, str(exc), param="cost_lambda") from None


LIMIT_HEADERS = {"max_calls": "x-hieramas-max-calls", "max_rounds": "x-hieramas-max-rounds"}
"""The request's limits on the design (body extension field -> header)."""


def limits_request(policy: Any, body: dict[str, Any], headers: Any) -> Any:
    """The `mas.limits.RequestLimits` of a request from its body fields and headers (module
    docstring); None when it sets none. ApiError 400 naming the field."""
    values = body_or_header(body, headers, LIMIT_HEADERS, lambda value, name, text: check_limit(value, name, text=text))
    return policy.request_limits(values["max_calls"], values["max_rounds"])


def recommend(policy: Any, body: Any, headers: Any = None) -> dict[str, Any]:
    """Answer `POST /design`: the chosen design, its graph score and the route (+ the cost pick)."""
    import torch

    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    unknown = sorted(set(body) - {"question", "meta", *COST_FIELDS, *LIMIT_HEADERS})
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown} (known: question, meta, "
                       f"{', '.join([*COST_FIELDS, *LIMIT_HEADERS])})")
    question, meta = body.get("question"), body.get("meta") or {}
    if not isinstance(question, str) or not question.strip():
        raise ApiError(400, "'question' must be a non-empty string", param="question")
    if not isinstance(meta, dict):
        raise ApiError(400, "'meta' must be an object", param="meta")
    pick = cost_request(policy, body, headers or {})
    limits = limits_request(policy, body, headers or {})
    lam = () if pick is None else (pick.cost_lambda,)
    design = policy.design((question, meta), **({"cost_lambda": lam[0]} if lam else {}),
                           **({} if limits is None else limits.to_dict()))
    with policy._lock, torch.no_grad():
        logit = policy.chooser.score((question, meta), [design], *lam)
    out = {"design": design.to_dict(), "graph_score": float(torch.sigmoid(logit)[0]),
           "route": policy.chooser.settings.route}
    if limits is not None:
        out["limits"] = policy.limits_report(design, limits)
    return out if pick is None else out | {"cost": pick.to_dict()}


def completion_body(sol: Any, model: str) -> dict[str, Any]:
    """The chat.completion object of one solved question."""
    calls = [{k: c[k] for k in ("model", "role", "position", "prompt_tokens", "completion_tokens",
                                "cost_usd", "latency_ms", "cache_hit")} for c in sol.trace["calls"]]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": sol.text or sol.answer or ""},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": sol.prompt_tokens, "completion_tokens": sol.completion_tokens,
                  "total_tokens": sol.tokens},
        "hieramas": {"design": sol.design, "answer": sol.answer, "correct": sol.correct,
                     "question_id": sol.question_id, "cost_usd": sol.cost_usd, "latency_ms": sol.latency_ms,
                     "calls": calls, **({"cost": sol.cost} if sol.cost is not None else {}),
                     **({"limits": sol.limits} if sol.limits is not None else {})},
    }


def _sse(body: dict[str, Any], include_usage: bool) -> list[bytes]:
    """The completion as server-sent-event chunks (role + content, stop, [usage], [DONE])."""
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"]}
    content = body["choices"][0]["message"]["content"]
    chunks = [base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                                   "finish_reason": None}], "hieramas": body["hieramas"]},
              base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    if include_usage:
        chunks.append(base | {"choices": [], "usage": body["usage"]})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def create_app(policy: Any, limits: ServeLimits | None = None) -> FastAPI:
    """The FastAPI app serving `policy` under `limits`."""
    limits = limits or ServeLimits()
    app = FastAPI(title="hieramas serve", docs_url=None, redoc_url=None, openapi_url=None)
    model_ids = {policy.name, f"hieramas/{policy.name}"}
    state: dict[str, Admission] = {}

    def admission() -> Admission:  # bound to the server's event loop on first use
        if "a" not in state:
            state["a"] = Admission(limits.max_concurrency, limits.queue_limit)
        return state["a"]

    def authorize(request: Request) -> None:
        if limits.api_key is None:
            return
        got = request.headers.get("authorization", "")
        scheme, _, token = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), limits.api_key.encode()):
            raise ApiError(401, "invalid or missing API key (send `Authorization: Bearer <key>`)",
                           "authentication_error", "invalid_api_key")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        what = f"{request.method} {request.url.path}"
        message = {404: f"unknown path: {what}", 405: f"method not allowed: {what}"}.get(exc.status_code, str(exc.detail))
        return ApiError(exc.status_code, message).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(500, f"internal error: {type(exc).__name__}", "server_error").response()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        a = admission()
        return {"ok": True, **policy.info(), "active": a.active}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [{"id": policy.name, "object": "model", "created": 0,
                                            "owned_by": "hieramas"}]}

    @app.post("/design")
    async def design(request: Request) -> dict[str, Any]:
        authorize(request)
        body = await read_json(request, limits)
        async with admission():
            try:
                return await asyncio.to_thread(recommend, policy, body, request.headers)
            except UserError as exc:
                raise ApiError(400, str(exc)) from None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        authorize(request)
        body = await read_json(request, limits)
        question = last_user_message(body)
        stream = check_chat_options(body, model_ids)
        pick = cost_request(policy, body, request.headers)
        bounds = limits_request(policy, body, request.headers)
        async with admission():
            try:
                sol = await policy.asolve(question, **({} if pick is None else {"cost_lambda": pick.cost_lambda}),
                                          **({} if bounds is None else bounds.to_dict()))
            except UserError as exc:
                raise ApiError(400, str(exc)) from None
        if sol.failed:
            raise ApiError(502, f"the MAS failed: {sol.failure_reason}", "server_error", "mas_failed")
        if pick is not None:
            sol.cost = pick.to_dict()  # the request's own pick (how it was asked: max_cost_usd, ...)
        out = completion_body(sol, body["model"])
        header = {"x-hieramas-design": json.dumps(sol.design, separators=(",", ":"))}
        if pick is not None:
            header["x-hieramas-cost-lambda"] = f"{pick.cost_lambda:g}"
        if stream:
            opts = body.get("stream_options") or {}
            chunks = _sse(out, bool(isinstance(opts, dict) and opts.get("include_usage")))
            return StreamingResponse(iter(chunks), media_type="text/event-stream", headers=header)
        return JSONResponse(out, headers=header)

    return app
