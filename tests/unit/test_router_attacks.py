"""Requests that try to reach another cell than their tenant's, or to tell a cell another
tenant than the one the router routed by: the embedded router, in this process, in front
of a real cell (an aiohttp server that records what reached it), spoken to in raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from cellops.router.server import Router, _low_level_server
from cellops.router.tablefile import write_table
from cellops.tenancy.table import CellRoute, RoutingTable

Seen = list[tuple[str, list[tuple[bytes, bytes]]]]  # (target, headers) as the cell got them


async def _serve(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
) -> tuple[web.ServerRunner, int]:
    runner = web.ServerRunner(web.Server(handler))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


async def _exchange(tmp: Path, key: str, requests: list[bytes]) -> list[tuple[bytes, Seen]]:
    """Each raw request through a router whose cell `a` is `http://127.0.0.1:PORT/cells/a`
    (tenant acme listed on it); the router's status line and what the cell saw."""
    seen: Seen = []

    async def cell(request: web.BaseRequest) -> web.Response:
        seen.append((request.raw_path, list(request.raw_headers)))
        return web.Response(text="cell a\n")

    cell_runner, cell_port = await _serve(cell)
    path = tmp / f"routing-{key}.json"
    route = CellRoute(f"http://127.0.0.1:{cell_port}/cells/a")
    write_table(path, RoutingTable(1, "r", {"a": route}, {"acme": "a"}, ("a",), key=key))
    router = Router(path)
    runner = web.ServerRunner(_low_level_server(router))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    results = []
    try:
        for raw in requests:
            seen.clear()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            answer = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            results.append((answer.split(b"\r\n")[0], list(seen)))
    finally:
        await runner.cleanup()
        await router.close()
        await cell_runner.cleanup()
    return results


def exchange(tmp: Path, key: str, *requests: str) -> list[tuple[bytes, Seen]]:
    raws = [r.replace("\n", "\r\n").encode() for r in requests]
    return asyncio.run(_exchange(tmp, key, raws))


def request(target: str, *headers: str) -> str:
    return "".join(
        [f"GET {target} HTTP/1.1\n", *(h + "\n" for h in headers), "Connection: close\n\n"]
    )


@pytest.mark.parametrize(
    "target",
    [
        "/../cells/b/orders",  # the entry point's path was /cells/a: this left it
        "/x/%2e%2e/%2E%2E/cells/b",
        "/x/%252e%252e/cells/b",
        "/x/.%2e\\..\\cells/b",
        "/./x",
        "http://cell-b.internal/orders",  # absolute-form: an ingress routes by its host
    ],
)
def test_a_target_that_could_leave_the_tenants_cell_is_refused(tmp_path: Path, target: str) -> None:
    [(status, seen)] = exchange(tmp_path, "header", request(target, "Host: r", "X-Tenant-Id: acme"))
    assert status == b"HTTP/1.1 400 Bad Request" and seen == []


def test_ordinary_targets_with_dots_still_reach_the_cell(tmp_path: Path) -> None:
    ok = request("/v1.2/file.tar.gz?q=a/../b&x=%2e", "Host: r", "X-Tenant-Id: acme")
    [(status, seen)] = exchange(tmp_path, "header", ok)
    assert status == b"HTTP/1.1 200 OK"
    assert seen[0][0] == "/cells/a/v1.2/file.tar.gz?q=a/../b&x=%2e"


def tenant_headers(seen: Seen) -> list[bytes]:
    [(_, headers)] = seen
    return [v for k, v in headers if k.lower() == b"x-tenant-id"]


def test_two_tenant_headers_are_refused_not_forwarded(tmp_path: Path) -> None:
    """The router took the first, HAProxy takes the last, a cell may take either."""
    both = request("/x", "Host: r", "X-Tenant-Id: acme", "x-tenant-id: victim")
    [(status, seen)] = exchange(tmp_path, "header", both)
    assert status == b"HTTP/1.1 400 Bad Request" and seen == []


def test_the_cell_is_told_the_tenant_the_router_routed_by(tmp_path: Path) -> None:
    """With the host or path key a client's own X-Tenant-Id reached the cell unchanged, and
    a Connection header naming X-Tenant-Id kept it from the cell altogether."""
    by_host, by_path, hidden = (
        exchange(tmp_path, "host", request("/x", "Host: acme.example.com", "X-Tenant-Id: victim")),
        exchange(tmp_path, "path", request("/acme/x", "Host: r", "X-Tenant-Id: victim")),
        exchange(
            tmp_path,
            "header",
            request("/x", "Host: r", "X-Tenant-Id: acme", "Connection: close, X-Tenant-Id"),
        ),
    )
    for [(status, seen)] in (by_host, by_path, hidden):
        assert status == b"HTTP/1.1 200 OK" and tenant_headers(seen) == [b"acme"]


def test_a_host_is_matched_without_case_and_a_request_without_one_is_refused(
    tmp_path: Path,
) -> None:
    """Host names have no case (nginx's $host is lowercased); without a Host header the
    router took this machine's own name for the tenant."""
    upper, none = exchange(
        tmp_path,
        "host",
        request("/x", "Host: ACME.Example.com:8000"),
        "GET /x HTTP/1.0\n\n",
    )
    assert upper[0] == b"HTTP/1.1 200 OK" and tenant_headers(upper[1]) == [b"acme"]
    assert none[0].endswith(b"400 Bad Request") and none[1] == []
