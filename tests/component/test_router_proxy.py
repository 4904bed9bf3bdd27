"""The router in process between a client (aiohttp) and a scripted cell: which headers
cross, each way, and that repeated ones (Set-Cookie) all arrive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from cellops.router.server import Router, serve
from cellops.router.tablefile import write_table
from cellops.tenancy.table import CellRoute, RoutingTable
from tests.component.test_router_upstream import OK, Cell

ANSWER = (
    b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    b"Connection: X-Hop\r\nX-Hop: inner\r\nKeep-Alive: timeout=5\r\nX-Cellops-Cell: forged\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n4\r\nmade\r\n0\r\n\r\n"
)


@contextlib.asynccontextmanager
async def _router(tmp: Path, cell_port: int) -> AsyncIterator[Router]:
    table = RoutingTable(1, "r", {"a": CellRoute(f"http://127.0.0.1:{cell_port}")}, {}, ("a",))
    write_table(tmp / "routing.json", table)
    router = Router(tmp / "routing.json")
    ready = asyncio.Event()
    serving = asyncio.create_task(serve(router, "127.0.0.1", 0, ready))
    await ready.wait()
    try:
        yield router
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _through_router(
    tmp: Path, cell: Cell, headers: dict[str, str], data: bytes
) -> tuple[int, aiohttp.ClientResponse, bytes]:
    port = await cell.start()
    async with (
        _router(tmp, port) as router,
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{router.port}/p?q=1", headers=headers, data=data) as r,
    ):
        return port, r, await r.read()


def test_headers_cross_the_router_as_http_says(tmp_path: Path) -> None:
    cell = Cell((ANSWER, "keep"))
    headers = {
        "X-Tenant-Id": "acme",
        "X-Forwarded-For": "10.1.2.3",
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "not for the cell",
        "X-Cellops-Cell": "forged",
        "TE": "trailers",
    }
    port, answer, body = asyncio.run(_through_router(tmp_path, cell, headers, b"body"))
    sent = cell.requests[0]
    head, _, sent_body = sent.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"post /p?q=1 http/1.1" and sent_body == b"body"
    assert f"host: 127.0.0.1:{port}".encode() in lines
    assert b"x-forwarded-for: 10.1.2.3" in lines and b"x-tenant-id: acme" in lines
    assert b"x-cellops-cell: a" in lines and b"x-cellops-cell: forged" not in lines
    assert not [x for x in lines if x.startswith((b"x-secret", b"te:", b"connection"))]
    assert (answer.status, body) == (201, b"made")
    assert answer.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert answer.headers.getall("X-Cellops-Cell") == ["a"]
    assert "X-Hop" not in answer.headers and "Transfer-Encoding" not in answer.headers


def test_bodies_of_megabytes_cross_both_ways(tmp_path: Path) -> None:
    big = bytes(range(256)) * (12 << 10)  # 3 MiB: over aiohttp's 1 MiB default
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big[::-1])
    cell = Cell((answer, "keep"))
    _, response, body = asyncio.run(_through_router(tmp_path, cell, {"X-Tenant-Id": "a"}, big))
    assert response.status == 200 and body == big[::-1]
    assert cell.requests[0].endswith(b"\r\n\r\n" + big)


def test_clients_hanging_up_on_a_slow_cell_do_not_open_its_breaker(tmp_path: Path) -> None:
    """Three clients give up waiting (a breaker opens after three failures); the cell then
    answers the fourth: the router's own timeout is a failure, a client's is not."""
    cell = Cell((b"", "hang"), (b"", "hang"), (b"", "hang"), (OK, "keep"))
    request = b"GET /x HTTP/1.1\r\nHost: router\r\nX-Tenant-Id: acme\r\n\r\n"

    async def main() -> int:
        async with _router(tmp_path, await cell.start()) as router:
            for n in range(1, 4):
                _, writer = await asyncio.open_connection("127.0.0.1", router.port)
                writer.write(request)
                await _until(lambda n=n: len(cell.requests) == n)  # the cell has it
                writer.close()
            await _until(lambda: router._bulkheads["a"].in_flight == 0)  # all three left
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{router.port}/x"
                async with session.get(url, headers={"X-Tenant-Id": "acme"}) as answer:
                    return answer.status

    assert asyncio.run(main()) == 200


async def _until(condition: Callable[[], bool], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)
