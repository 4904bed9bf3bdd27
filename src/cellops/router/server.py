"""`cellops router`: an HTTP reverse proxy from tenants to their cells (aiohttp).

It routes by the table on disk, reloads it when the file changes (in-flight requests finish
on the connections they have), and keeps the last good table when a new one is malformed
or the controller is gone: routing never depends on the control plane being up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import structlog
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from cellops.router.bulkhead import Bulkhead, Limits
from cellops.router.headers import answer_headers, forwarded_headers
from cellops.router.holds import Holds
from cellops.router.tablefile import read_table
from cellops.router.upstream import Upstream, UpstreamError
from cellops.tenancy.checks import TENANT_ID
from cellops.tenancy.table import RoutingTable, TableError

log = structlog.get_logger("cellops.router")
STATUS_PATH = "/.cellops/router"
MAX_BODY = 64 << 20  # a request's body is read whole before it goes to the cell


class Router:
    def __init__(self, table_path: Path, limits: Limits | None = None) -> None:
        self.path = table_path
        self.limits = limits or Limits()
        self.table: RoutingTable = read_table(table_path)  # no good table: refuse to start
        self._stamp = _stamp(table_path)
        self.refused: str | None = None  # why the newest file was not loaded
        self.holds = Holds()  # moves waiting for their new cell to answer
        self._bulkheads: dict[str, Bulkhead] = {}
        self._upstreams: dict[str, Upstream] = {}  # by cell URL
        self._cell_lines: dict[str, bytes] = {}
        self._probes: aiohttp.ClientSession | None = None
        self.port = 0  # the port it listens on, once serving

    def reload(self) -> bool:
        """Read the table again if the file changed; a bad one is logged and ignored."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            table = read_table(self.path)
        except TableError as exc:
            self.refused = str(exc)
            log.warning(
                "table refused, keeping the last good one",
                error=str(exc),
                version=self.table.version,
            )
            return False
        self.holds.update(self.table, table)
        self.table, self.refused = table, None
        log.info("table loaded", version=table.version, revision=table.revision[:12])
        return True

    def tenant_of(self, request: web.BaseRequest) -> tuple[str | None, str]:
        """The request's tenant (None: none, or more than one) and the target for the cell."""
        table = self.table
        path = request.raw_path
        if table.key == "header":
            found = request.headers.getall(table.header, ())
            return (found[0] if len(found) == 1 else None), path  # two: which one is meant?
        if table.key == "host":  # the Host header only (aiohttp's `host` falls back to
            host = request.headers.get("Host", "")  # this machine's name); DNS has no case
            return host.split(":")[0].split(".")[0].lower() or None, path
        _, _, rest = path.partition("/")
        tenant, slash, tail = rest.partition("/")
        return tenant or None, "/" + tail if slash else "/"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == STATUS_PATH:
            table = self.table
            status = {
                "version": table.version,
                "revision": table.revision,
                "refused": self.refused,
                "held": len(self.holds.held),
            }
            return web.json_response(status)
        why = target_problem(request.raw_path)
        if why is not None:
            return _refuse(400, why)
        tenant, path = self.tenant_of(request)
        if tenant is None or not TENANT_ID.match(tenant):
            return _refuse(400, f"no tenant: expected {self._expected()}")
        table = self.table
        cell = self.holds.cell_of(tenant, table)
        route = table.cells.get(cell) if cell is not None else None
        if cell is None or route is None:
            return _refuse(503, "no cell takes tenants", self.limits.retry_after)
        if route.state == "quarantined":
            return _refuse(503, f"cell {cell} is quarantined", self.limits.retry_after)
        bulkhead = self._bulkheads.get(cell)
        if bulkhead is None:
            bulkhead = self._bulkheads[cell] = Bulkhead(self.limits)
        why = bulkhead.enter()
        if why is not None:
            return _refuse(503, f"{why}: {cell}", self.limits.retry_after)
        ok: bool | None = False
        try:
            response = await self._forward(request, route.url, path, cell, tenant)
            ok = True  # the cell answered: its own 5xx is its tenants' answer
            return response
        except asyncio.CancelledError:
            ok = None  # the client hung up: no news of the cell, not one of its failures
            raise
        except (UpstreamError, TimeoutError) as exc:
            log.info("cell failed", cell=cell, error=str(exc) or type(exc).__name__)
            return _refuse(503, f"cell {cell} did not answer", self.limits.retry_after)
        finally:
            bulkhead.leave(ok)

    async def _forward(
        self, request: web.BaseRequest, url: str, path: str, cell: str, tenant: str
    ) -> web.Response:
        upstream = self._upstream(url)
        header = self.table.header  # the cell is told the tenant the router routed by
        own = [self._cell_line(cell), b"%s: %s\r\n" % (header.encode(), tenant.encode())]
        headers = forwarded_headers(request, own, header)
        body = await request.read()
        async with asyncio.timeout(self.limits.timeout):
            answer = await upstream.send(request.method, path.encode(), headers, body)
        out = answer_headers(answer.headers)
        out["X-Cellops-Cell"] = cell
        data = answer.body[0] if len(answer.body) == 1 else b"".join(answer.body)
        return web.Response(status=answer.status, headers=out, body=data)

    def _upstream(self, url: str) -> Upstream:
        upstream = self._upstreams.get(url)
        if upstream is None:
            limits = self.limits
            upstream = Upstream(url, limits.max_connections, limits.connect_timeout)
            self._upstreams[url] = upstream
        return upstream

    def _cell_line(self, cell: str) -> bytes:
        line = self._cell_lines.get(cell)
        if line is None:
            if not cell.isprintable():
                raise UpstreamError(f"cell name {cell!r} cannot be a header value")
            line = self._cell_lines[cell] = b"X-Cellops-Cell: %s\r\n" % cell.encode()
        return line

    def probe_session(self) -> aiohttp.ClientSession:
        if self._probes is None:
            self._probes = aiohttp.ClientSession()
        return self._probes

    def _expected(self) -> str:
        table = self.table
        if table.key == "header":
            return f"a {table.header} header"
        return "a tenant host name" if table.key == "host" else "/<tenant>/ path prefix"

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            upstream.close()
        if self._probes is not None:
            await self._probes.close()


def target_problem(target: str) -> str | None:
    """Why a request target cannot go to a cell as it is, or None. Only a path: an
    absolute-form target names its own host, which a cell's ingress would route by. No
    `.` or `..` segment, even percent-encoded: behind an entry point with a path (or a
    shared ingress) `/../other-cell/` would leave the tenant's cell."""
    if not target.startswith("/"):
        return "expected a path starting with /"
    path = target.partition("?")[0]
    if "." not in path and "%" not in path:
        return None  # the common case, at no cost
    decoded = unquote(path)
    while decoded != path:  # %252e%252e is .. to a cell that decodes twice
        path, decoded = decoded, unquote(decoded)
    for segment in decoded.replace("\\", "/").split("/"):
        if segment in (".", ".."):
            return "a path with . or .. segments is not forwarded"
    return None


def _refuse(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return web.Response(status=status, text=message + "\n", headers=headers)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _low_level_server(router: Router) -> web.Server:
    """aiohttp's server without an Application: every request is the router's, so no URL
    dispatch, no middlewares, no signals (about a sixth of the router's CPU)."""
    loop = asyncio.get_running_loop()

    def request(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=MAX_BODY
        )

    return web.Server(
        router.handle, request_factory=request, handler_cancellation=True, access_log=None
    )


async def serve(
    router: Router, host: str, port: int, ready: asyncio.Event | None = None, poll: float = 0.2
) -> None:
    """Serve until cancelled; print the address once listening."""
    runner = web.ServerRunner(_low_level_server(router))
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = router.port = runner.addresses[0][1] if runner.addresses else port
    print(
        f"router listening on http://{host}:{bound} (table version {router.table.version})",
        flush=True,
    )
    if ready is not None:
        ready.set()
    try:
        while True:
            await asyncio.sleep(poll)
            router.reload()
            if router.holds.waiting:
                await router.holds.probe(router.table, router.probe_session())
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await router.close()
