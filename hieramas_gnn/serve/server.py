"""Run the app (`serve.app.create_app`) under uvicorn with hardened HTTP settings.

- `h11` parses requests: a malformed `Content-Length` (negative, not a number, two values) is a
  400 from the protocol layer before the app runs; a request head over `max_head_bytes` is a 400.
- Slow clients: a connection whose request head has not fully arrived `header_timeout_s` after it
  opened (or after its previous response) gets `408` and is closed (uvicorn itself only times out
  idle keep-alive connections, so a client trickling header bytes would otherwise hold a
  connection forever); a body that does not arrive within `ServeLimits.body_timeout_s` gets 408
  from the app.
- `limit_concurrency` (uvicorn: open connections + tasks) answers 503 beyond a hard ceiling, far
  above the app's own queue (`ServeLimits`), which answers 429 first.
- Graceful shutdown (SIGINT / SIGTERM): stop accepting, finish the requests in flight (up to
  `graceful_timeout_s`), then exit.

`ServerThread(app, ...)` runs the same server in a background thread (tests, notebooks).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

_408 = (b'{"error":{"message":"request head not received in time","type":"invalid_request_error",'
        b'"param":null,"code":"request_timeout"}}')


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request head (see the module docstring)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._seen_cycle:  # a new request head arrived
            self._seen_cycle = self.cycle
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        head = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: " + str(len(_408)).encode() + b"\r\n\r\n")
        self.transport.write(head + _408)
        self.transport.close()


def protocol_class(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A `GuardedH11Protocol` subclass with this head deadline."""
    return type("GuardedH11", (GuardedH11Protocol,), {"header_timeout_s": float(header_timeout_s)})


def make_config(app: Any, host: str = "127.0.0.1", port: int = 8000, *, header_timeout_s: float = 10.0,
                max_head_bytes: int = 16384, keep_alive_s: int = 5, graceful_timeout_s: int = 30,
                max_connections: int = 4096, log_level: str = "warning", access_log: bool = False) -> uvicorn.Config:
    """The uvicorn settings `hieramas serve` runs with (module docstring). `access_log`: one line
    per request in uvicorn's access-log format (`127.0.0.1:53412 - "POST /design HTTP/1.1" 200`),
    while other server messages stay at `log_level`."""
    import logging

    config = uvicorn.Config(app, host=host, port=port, http=protocol_class(header_timeout_s), loop="asyncio",
                            lifespan="off", h11_max_incomplete_event_size=max_head_bytes,
                            timeout_keep_alive=keep_alive_s, timeout_graceful_shutdown=graceful_timeout_s,
                            limit_concurrency=max_connections, backlog=2048, log_level=log_level,
                            access_log=access_log, server_header=False)
    if access_log:  # configured by uvicorn.Config above at `log_level`; access lines are INFO
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return config


class ServerThread:
    """A uvicorn server in a daemon thread: `start()` -> base URL, `stop()` (graceful)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **settings: Any) -> None:
        self.server = uvicorn.Server(make_config(app, host, port, **settings))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="hieramas-serve")
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (port in use?)")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
