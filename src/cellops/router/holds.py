"""Moves wait for their target: a tenant the new table sends to another cell keeps going to
its old cell until the new one has answered a request of the router's own (any HTTP
answer: the cell is up and serving). A move to a cell that is down is held, not failed;
requests in flight on the old cell finish there either way."""

from __future__ import annotations

import aiohttp
import structlog

from cellops.tenancy.table import RoutingTable

log = structlog.get_logger("cellops.router")
PROBE_TIMEOUT = 1.0


class Holds:
    def __init__(self) -> None:
        self.held: dict[str, str] = {}  # tenant -> the cell it stays on for now
        self.waiting: dict[str, set[str]] = {}  # new cell -> tenants held until it answers

    def update(self, old: RoutingTable, new: RoutingTable) -> None:
        """Hold the listed tenants `new` moves (and those already held that still move)."""
        previous = dict(self.held)
        self.held, self.waiting = {}, {}
        for tenant, cell in new.tenants.items():
            before = previous.get(tenant) or old.lookup(tenant)
            if before is None or before == cell or before not in new.cells:
                continue
            self.held[tenant] = before
            self.waiting.setdefault(cell, set()).add(tenant)

    def cell_of(self, tenant: str, table: RoutingTable) -> str | None:
        held = self.held.get(tenant)
        return held if held is not None else table.lookup(tenant)

    async def probe(self, table: RoutingTable, session: aiohttp.ClientSession) -> None:
        """Release the tenants of every waiting cell that answers now."""
        for cell in list(self.waiting):
            route = table.cells.get(cell)
            if route is None or not await _answers(session, route.url):
                continue
            tenants = self.waiting.pop(cell)
            for tenant in tenants:
                self.held.pop(tenant, None)
            log.info("moves released", cell=cell, tenants=len(tenants))


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with session.get(url + "/", timeout=timeout, allow_redirects=False) as response:
            await response.read()
            return True
    except (aiohttp.ClientError, TimeoutError):
        return False
