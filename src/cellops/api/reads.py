"""GET /api/v1/...: the fleet, cells, services, revisions, rollouts and events (viewer).

Most are answered on the event loop from answers kept as JSON (a worker thread's hop
each way is a wake-up each, which a busy machine makes tens of milliseconds), through
the context's own connection for the loop (`ApiContext.quick`); the cells' snapshot is
waited for in a worker thread only before its first build."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from cellops.api.auth import context, viewer
from cellops.api.fleetview import dumps
from cellops.api.snapshot import FleetView
from cellops.query import cells as cell_queries
from cellops.query import history, rollouts
from cellops.query.base import parse_time
from cellops.query.fleet import fleet_summary
from cellops.store.eventquery import EventFilter

router = APIRouter(prefix="/api/v1", tags=["read"], dependencies=[viewer])


def kept(
    request: Request,
    make: Callable[[], object | None],
    missing: str,
    version: object = None,
    *,
    loop: bool = True,
) -> Response:
    """An answer made again only once the store changed (and, with `version`, whatever
    else it is made from). `loop`: called on the event loop (else in a worker thread)."""
    ctx = context(request)

    def body() -> bytes:
        data = make()
        return b"" if data is None else data if isinstance(data, bytes) else dumps(data)

    store = ctx.quick if loop else ctx.store
    found = ctx.answers.get(str(request.url), (store.version(), version), body)
    if not found:
        raise HTTPException(404, missing)
    return Response(found, media_type="application/json")


async def _view(request: Request) -> FleetView:
    snapshot = context(request).snapshot
    view = snapshot.peek()
    return view if view is not None else await run_in_threadpool(snapshot.get)


@router.get("/fleet", summary="The fleet: revision, cells by health, the latest rollout")
async def fleet(request: Request) -> Response:
    store, view = context(request).quick, await _view(request)
    return kept(
        request, lambda: fleet_summary(store, view.cells, len(view.services)), "", view.number
    )


@router.get("/cells", summary="Every cell (also those not applied yet), a page at a time")
async def cells(  # noqa: PLR0917 - query parameters
    request: Request,
    region: str | None = None,
    ring: str | None = None,
    health: str | None = None,
    limit: int = Query(5000, ge=1, le=5000),
    offset: int = Query(0, ge=0),
) -> Response:
    view = await _view(request)

    def page() -> bytes:
        found = [
            i
            for i, c in enumerate(view.cells)
            if (region is None or c["region"] == region)
            and (ring is None or c["ring"] == ring)
            and (health is None or c["health"] == health)
        ]
        return view.page(found[offset : offset + limit], len(found))

    return kept(request, page, "", view.number)


@router.get("/cells/{name}", summary="One cell: services, replicas, address or namespace")
def cell(request: Request, name: str) -> Response:
    ctx = context(request)
    return kept(
        request,
        lambda: cell_queries.cell(ctx.store, ctx.observe, name, ctx.desired()),
        f"no cell {name!r} in the ledger or the current revision",
        int(time.monotonic()),  # what its agent reports: looked at again each second
        loop=False,  # the current revision is read through the controller's compiler
    )


@router.get("/services", summary="Per service: cells, revisions and health")
async def services(request: Request) -> Response:
    view = await _view(request)
    return kept(request, lambda: view.services, "", view.number)


@router.get("/revisions", summary="Revisions seen, accepted or rejected (with problems)")
async def revisions(request: Request, limit: int = Query(50, ge=1, le=1000)) -> Response:
    return kept(request, lambda: history.revisions(context(request).quick, limit), "")


@router.get("/rollouts", summary="Rollouts, newest first")
async def rollout_list(request: Request, limit: int = Query(20, ge=1, le=1000)) -> Response:
    return kept(request, lambda: rollouts.rollouts(context(request).quick, limit), "")


@router.get("/rollouts/latest", summary="The latest rollout: waves, steps, why it waits")
async def rollout_latest(request: Request) -> Response:
    return kept(request, lambda: rollouts.rollout(context(request).quick), "no rollout yet")


@router.get("/rollouts/{rollout_id}", summary="One rollout: waves, steps, why it waits")
async def rollout_one(request: Request, rollout_id: int) -> Response:
    store = context(request).quick
    return kept(request, lambda: rollouts.rollout(store, rollout_id), f"no rollout #{rollout_id}")


@router.get("/events", summary="Events, newest first; `next` is the next page's `before`")
async def events(  # noqa: PLR0917 - query parameters
    request: Request,
    kind: list[str] = Query(default=[]),  # noqa: B008
    cell: str | None = None,
    service: str | None = None,
    revision: str | None = None,
    rollout: int | None = None,
    since: str | None = Query(None, description="ISO-8601, e.g. 2026-11-30T10:00:00Z"),
    before: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    try:
        start = parse_time(since) if since else None
    except ValueError:
        raise HTTPException(
            422, f"since: {since!r} is not an ISO-8601 time (e.g. 2026-11-30T10:00:00Z)"
        ) from None
    where = EventFilter(tuple(kind), cell, service, revision, rollout, start, before)
    return kept(request, lambda: history.events(context(request).quick, where, limit), "")


@router.get("/whoami", summary="The token's name and role")
def whoami(request: Request) -> dict[str, Any]:
    token = request.state.token
    return {"name": token.name, "role": str(token.role)}


@router.get("/dora", summary="DORA figures for the fleet, each service and cell, over a window")
def dora(
    request: Request,
    since: str = Query("30d", description="back from now (30d, 2w, 12h, 90m) or a date"),
) -> dict[str, object]:
    import typer

    from cellops.cli.dora import parse_since  # `cellops dora --since`, the same words
    from cellops.observe.dora import dora_report

    ctx = context(request)
    now = ctx.clock()
    try:
        start = parse_since(since, now)
    except typer.BadParameter as exc:
        raise HTTPException(422, f"since: {exc.message}") from None
    return dora_report(ctx.store, start, now)
