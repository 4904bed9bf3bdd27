"""The router's upstream leg (`Upstream`) against a scripted cell on loopback, in process:
keep-alive reuse, every way an answer can be framed, the one retry of a stale idle
connection, and no reuse of a connection whose answer was abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cellops.router.upstream import Answer, Upstream, UpstreamError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
GET = b"GET /x HTTP/1.1\r\nHost: cell\r\n\r\n"
Step = tuple[bytes, str]  # what the cell sends, then "keep", "close" or "hang"


class Cell:
    """Answers the n-th request (over all connections) with the n-th step of a script."""

    def __init__(self, *script: Step) -> None:
        self.script = list(script)
        self.connections = 0
        self.requests: list[bytes] = []
        self.hanging = asyncio.Event()

    async def start(self) -> int:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.script:
                head = await reader.readuntil(b"\r\n\r\n")  # the test's requests: simple
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                data, then = self.script.pop(0)
                writer.write(data)
                await writer.drain()
                if then == "hang":
                    self.hanging.set()
                    await asyncio.Event().wait()
                if then == "close":
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


def run(cell: Cell, body: Callable[[Upstream], Awaitable[None]]) -> None:
    async def main() -> None:
        port = await cell.start()
        upstream = Upstream(f"http://127.0.0.1:{port}/base", keep=4, connect_timeout=5)
        try:
            await body(upstream)
        finally:
            upstream.close()

    asyncio.run(main())


def text(answer: Answer) -> bytes:
    return b"".join(answer.body)


def test_requests_reuse_one_connection_and_carry_host_length_and_prefix() -> None:
    cell = Cell((OK, "keep"), (OK, "keep"))

    async def body(up: Upstream) -> None:
        first = await up.send("POST", b"/x?q=1", [b"X-Forwarded-For: 10.0.0.1\r\n"], b"hello")
        second = await up.send("GET", b"/y", [], b"")
        assert (first.status, text(first), text(second)) == (200, b"ok\n", b"ok\n")
        assert (b"content-length", b"3") in [(k.lower(), v) for k, v in first.headers]

    run(cell, body)
    assert cell.connections == 1
    post = cell.requests[0]
    assert post.startswith(b"POST /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-Forwarded-For: 10.0.0.1\r\n" in post and post.endswith(
        b"Content-Length: 5\r\n\r\nhello"
    )
    assert b"Content-Length" not in cell.requests[1]  # a GET without a body has none


@pytest.mark.parametrize(
    ("step", "method", "status", "expected", "reused"),
    [
        ((CHUNKED, "keep"), "GET", 200, b"abcde", True),
        ((b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "close"), "GET", 200, b"until the end", False),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "keep"), "HEAD", 200, b"", False),
        ((b"HTTP/1.1 100 Continue\r\n\r\n" + OK, "keep"), "PUT", 200, b"ok\n", True),
        ((b"HTTP/1.1 204 No Content\r\n\r\n", "keep"), "DELETE", 204, b"", True),
        (
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1", "keep"),
            "GET",
            200,
            b"1",
            False,
        ),
    ],
    ids=["chunked", "until-close", "head", "100-continue", "204", "connection-close"],
)
def test_every_framing_of_an_answer(
    step: Step, method: str, status: int, expected: bytes, reused: bool
) -> None:
    cell = Cell(step, (OK, "keep"))

    async def body(up: Upstream) -> None:
        answer = await up.send(method, b"/", [], b"")
        assert (answer.status, text(answer)) == (status, expected)
        assert text(await up.send("GET", b"/", [], b"")) == b"ok\n"

    run(cell, body)
    assert cell.connections == (1 if reused else 2)


def test_a_stale_idle_connection_is_retried_once_for_a_get_but_never_for_a_post() -> None:
    cell = Cell((OK, "keep"), (b"", "close"), (OK, "keep"), (OK, "keep"), (b"", "close"))

    async def body(up: Upstream) -> None:
        await up.send("GET", b"/", [], b"")
        assert text(await up.send("GET", b"/", [], b"")) == b"ok\n"  # closed unanswered: again
        await up.send("GET", b"/", [], b"")
        with pytest.raises(UpstreamError, match="closed"):
            await up.send("POST", b"/", [], b"data")  # not idempotent: not sent twice

    run(cell, body)
    assert cell.connections == 2 and len(cell.requests) == 5


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"]
)
def test_a_malformed_or_cut_answer_is_an_upstream_error(answer: bytes) -> None:
    cell = Cell((answer, "close"))

    async def body(up: Upstream) -> None:
        with pytest.raises(UpstreamError):
            await up.send("GET", b"/", [], b"")
        assert up.idle == []

    run(cell, body)


def test_an_abandoned_answer_closes_its_connection() -> None:
    cell = Cell((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "hang"), (OK, "keep"))

    async def body(up: Upstream) -> None:
        task = asyncio.create_task(up.send("GET", b"/", [], b""))
        await cell.hanging.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert text(await up.send("GET", b"/", [], b"")) == b"ok\n"

    run(cell, body)
    assert cell.connections == 2


def test_nothing_listening_and_bad_urls_are_upstream_errors() -> None:
    async def body() -> None:
        with pytest.raises(UpstreamError, match="cannot connect"):
            await Upstream("http://127.0.0.1:1", 4, 5).send("GET", b"/", [], b"")

    asyncio.run(body())
    with pytest.raises(UpstreamError, match="expected http"):
        Upstream("ftp://cell", 4, 5)


def test_bytes_past_the_answer_close_the_connection() -> None:
    extra = b"HTTP/1.1 200 OK\r\nX-Extra: 1\r\nContent-Length: 0\r\n\r\n"
    cell = Cell((OK + extra, "keep"), (OK, "keep"))

    async def body(up: Upstream) -> None:
        answer = await up.send("GET", b"/", [], b"")
        assert answer.headers == [(b"Content-Length", b"3")] and text(answer) == b"ok\n"
        assert text(await up.send("GET", b"/", [], b"")) == b"ok\n"

    run(cell, body)
    assert cell.connections == 2
