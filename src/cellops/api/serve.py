"""The listener `cellops up` runs: the API (and the webhook, and any further routes such
as /metrics behind a token) over the controller's state, on a thread of its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from starlette.routing import Route
from starlette.types import ASGIApp

from cellops.api.app import create_app
from cellops.api.auth import viewer
from cellops.api.context import ApiContext, Recent
from cellops.api.listener import Listener
from cellops.query.base import Observe
from cellops.render import DesiredFleet
from cellops.store.sqlite import SqliteStore


@dataclass(frozen=True)
class ListenOptions:
    host: str
    port: int
    tls: tuple[Path, Path] | None = None
    option: str = "--listen"  # what to change when the port is taken
    what: str = "the API"


def protected(routes: Sequence[Route]) -> APIRouter:
    """Plain Starlette routes (/metrics) behind a token of any role."""
    router = APIRouter(dependencies=[viewer])
    for route in routes:
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or {"GET"}),
            include_in_schema=False,
        )
    return router


def start_api(
    database: Path,
    options: ListenOptions,
    *,
    observe: Observe,
    desired: Callable[[SqliteStore], DesiredFleet | None],
    wake: Callable[[], None],
    secret: str | None,
    routes: Sequence[Route] = (),
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
) -> tuple[Listener, ApiContext, str]:
    """Serve the API on its own connection to the store; (the listener, that store, the
    base URL). The caller stops the listener, then closes the store. `wrap`: middleware
    around the whole app (the request timer of /metrics)."""
    store = SqliteStore(database)
    ctx = ApiContext(
        store,
        reader=SqliteStore(database),
        live=SqliteStore(database),
        observe=Recent(observe),
        desired=lambda: desired(store),
        wake=wake,
        webhook_secret=secret,
        webhook=True,
    )
    ctx.state["state_dir"] = database.parent  # the dashboard's log tails
    app = create_app(ctx, extra=[protected(routes)] if routes else ())
    listener = Listener(
        wrap(app) if wrap is not None else app,
        options.host,
        options.port,
        option=options.option,
        what=options.what,
        tls=options.tls,
    )
    try:
        port = listener.start()
    except BaseException:
        ctx.close()
        raise
    host = f"[{options.host}]" if ":" in options.host else options.host
    return listener, ctx, f"{listener.scheme}://{host}:{port}"
