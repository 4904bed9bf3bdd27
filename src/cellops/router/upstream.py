"""The router's upstream leg: a small keep-alive pool of connections per cell.

Each connection is an asyncio protocol whose responses are parsed by httptools (llhttp,
the parser Node.js and aiohttp use): no HTTP parsing is written here, only the request's
bytes. It replaced aiohttp's `ClientSession`, which cost ~40% of the router's CPU (URL
objects, cookie jar, tracing, header multidicts on every request).

A response is read whole before it is answered, as the ClientSession leg did. A request
that fails on a reused connection before any byte of its answer (the cell closed an idle
connection just then) is sent once more on a new connection to the same cell, when its
method is idempotent; never to another cell.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class UpstreamError(Exception):
    """The cell did not give a whole answer (refused, reset, closed early, malformed)."""


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)


class _Connection(asyncio.Protocol):
    """One connection to a cell; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser = httptools.HttpResponseParser(self)
        self.answer = Answer()
        self.done: asyncio.Future[None] | None = None
        self.head = False  # a HEAD's answer ends with its headers (and the connection)
        self.framed = False  # Content-Length or Transfer-Encoding: else the body ends at EOF
        self.started = False  # a byte of the answer came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        done = self.done
        if done is None or done.done():
            return
        if self.answer.status and not self.framed and not self.head:
            done.set_result(None)  # the body was "until the connection closes"
        else:
            done.set_exception(UpstreamError(f"connection closed: {exc or 'by the cell'}"))

    def data_received(self, data: bytes) -> None:
        if self.done is None or self.done.done():  # bytes nobody asked for: not to be trusted
            self._fail(UpstreamError("answer without a request"))
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # HttpParserError, or an upgrade it does not go through
            self._fail(UpstreamError(f"malformed answer: {exc!r}"))

    def on_message_begin(self) -> None:
        if self.done is None or self.done.done():  # a second answer in the same bytes
            raise UpstreamError("answer without a request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.answer.headers.append((name, value))
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.answer.status = self.parser.get_status_code()
        if self.head and self.answer.status >= 200:
            self._finish(reuse=False)

    def on_body(self, body: bytes) -> None:
        self.answer.body.append(body)

    def on_message_complete(self) -> None:
        if self.answer.status < 200:  # 100 Continue and kin: the real answer follows
            self.answer, self.framed = Answer(), False
            return
        self._finish(reuse=self.parser.should_keep_alive())

    def _finish(self, reuse: bool) -> None:
        if not reuse and self.transport is not None:
            self.closed = True
            self.transport.close()
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    async def exchange(self, request: list[bytes], head: bool) -> Answer:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.answer, self.head, self.framed, self.started = Answer(), head, False, False
        self.transport.write(b"".join(request))  # one segment, not one per header line
        try:
            await self.done
        except BaseException:
            self._fail(UpstreamError("abandoned"))  # cancelled or timed out: never reused
            raise
        finally:
            self.done = None
        return self.answer


class Upstream:
    """The keep-alive connections to one cell (at most `keep` of them idle)."""

    def __init__(self, url: str, keep: int, connect_timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamError(f"cell URL {url!r}: expected http(s)://host[:port]")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/").encode()
        self.authority = (parts.netloc.rpartition("@")[2]).encode()
        self.keep, self.connect_timeout = keep, connect_timeout
        self.idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self.ssl
                )
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return conn

    async def send(self, method: str, target: bytes, headers: list[bytes], body: bytes) -> Answer:
        """`headers`: whole `Name: value\\r\\n` lines (no Host, no Content-Length)."""
        start = b"%s %s%s HTTP/1.1\r\nHost: %s\r\n" % (
            method.encode(),
            self.prefix,
            target,
            self.authority,
        )
        if body or method in ("POST", "PUT", "PATCH"):
            headers = [*headers, b"Content-Length: %d\r\n" % len(body)]
        request = [start, *headers, b"\r\n", body] if body else [start, *headers, b"\r\n"]
        head = method == "HEAD"
        while self.idle:
            conn = self.idle.pop()
            if conn.closed:
                continue
            try:
                return self._release(conn, await conn.exchange(request, head))
            except UpstreamError:
                if conn.started or method not in IDEMPOTENT:
                    raise
                break  # the cell closed it while idle: once more on a new connection
        conn = await self._connect()
        return self._release(conn, await conn.exchange(request, head))

    def _release(self, conn: _Connection, answer: Answer) -> Answer:
        if not conn.closed and len(self.idle) < self.keep:
            self.idle.append(conn)
        elif not conn.closed and conn.transport is not None:
            conn.transport.close()
        return answer

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
