"""The listener against slow and many clients.

uvicorn reads a request's headers for as long as the client takes, and counts every open
connection against its concurrency limit: 64 clients sending their headers a byte at a
time (slow-loris) made it answer 503 to everyone else. Here

- a request's headers must arrive within `header_timeout` seconds of its first byte (or
  of the connection, for the first request), and its body within `body_timeout` more,
  else the connection is closed;
- at most `max_open` connections are kept: a new one beyond closes the one waiting
  longest for its request (a client sending headers, or idle between requests), so a
  normal client always gets in;
- what is bounded is the requests in flight (`InFlight`, 503 with Retry-After beyond),
  not the connections still sending their headers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0  # the webhook's body is at most 4 MiB
MAX_OPEN = 512


def guarded(
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    max_open: int = MAX_OPEN,
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with these deadlines and bound (`Config(http=...)`)."""

    class Guarded(_Guarded):
        timeouts = (header_timeout, body_timeout)
        most = max_open

    return Guarded


class _Guarded(H11Protocol):
    timeouts = (HEADER_TIMEOUT, BODY_TIMEOUT)
    most = MAX_OPEN
    _deadline: asyncio.TimerHandle | None = None
    waiting_since: float | None = None  # reading a request's headers (or idle) since

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self.most:
            waiting = [
                (c.waiting_since, c)
                for c in self.connections
                if isinstance(c, _Guarded) and c.waiting_since is not None
            ]
            if waiting:
                min(waiting, key=lambda pair: pair[0])[1].transport.close()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._await_headers()  # the next request on a kept-alive connection
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY and self.waiting_since is not None:
            self.waiting_since = None
            self._arm(self.timeouts[1])
        elif state is not h11.IDLE and state is not h11.SEND_BODY:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.waiting_since = time.monotonic()  # idle: the first to go when full

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self.waiting_since = time.monotonic()
        self._arm(self.timeouts[0])

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.waiting_since = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class InFlight:
    """At most `limit` requests in flight (bodies held, routes running); 503 beyond."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.count = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.count >= self.limit:
            busy: Any = JSONResponse(
                {"detail": f"{self.limit} requests are in flight: try again in a second"},
                503,
                headers={"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1
