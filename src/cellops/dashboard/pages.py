"""The dashboard's routes: the login page, the fleet overview, the live rollout, the
revision history, a cell, the event feed and the DORA figures. Every page but the login
needs a signed-in token (else a redirect to /login); the operator's buttons are rendered
only for an operator's token, and the API they call enforces the role again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from cellops.api.auth import context
from cellops.api.context import ApiContext
from cellops.dashboard import matrix, panels, session
from cellops.dashboard.charts import seconds
from cellops.dashboard.grid import squares
from cellops.dashboard.logtail import tails
from cellops.query import cells as cell_queries
from cellops.query import history, rollouts
from cellops.query.fleet import fleet_summary
from cellops.query.images import images as image_verdicts
from cellops.store.eventquery import EventFilter
from cellops.store.tokens import TokenRecord

HERE = Path(__file__).parent
STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
    " script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(seconds=seconds, squares=squares)
router = APIRouter(include_in_schema=False)
Build = Callable[[ApiContext, TokenRecord], dict[str, Any]]


def _page(request: Request, template: str, build: Build) -> Response:
    token = session.signed_in(request)
    if token is None:
        return session.to_login(request)
    me = {"me": session.viewer_of(token), "path": request.url.path}
    try:
        data = build(context(request), token)
    except HTTPException as exc:  # a page that is not there: said on a page
        error = {**me, "status": exc.status_code, "detail": exc.detail}
        return templates.TemplateResponse(
            request, "error.html", error, status_code=exc.status_code, headers=SECURITY
        )
    return templates.TemplateResponse(request, template, {**me, **data}, headers=SECURITY)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return templates.TemplateResponse(
        request, "login.html", {"next": session.safe_next(next), "error": ""}, headers=SECURITY
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await session.login_form(request)
    target = session.safe_next(form.get("next"))
    token = form.get("token", "").strip()
    ctx = context(request)
    found = ctx.store.authenticate(token, ctx.clock()) if token else None
    if found is None or not session.same_origin(request):
        error = (
            "this form was sent from another site"
            if found is not None
            else "token: unknown, revoked or expired (`cellops token create --role viewer`)"
        )
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": target, "error": error},
            status_code=403 if found is not None else 401,
            headers=SECURITY,
        )
    return session.sign_in(request, found, target)


@router.post("/logout")
def logout(request: Request) -> Response:
    return session.sign_out(request)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(
        HERE / "static" / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _cells(ctx: ApiContext) -> list[dict[str, Any]]:
    return ctx.snapshot.get().cells  # the API's view of every cell, a second or two old


@router.get("/", response_class=HTMLResponse)
def overview(  # noqa: PLR0917 - query parameters
    request: Request,
    region: str | None = None,
    ring: str | None = None,
    health: str | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(matrix.PAGE, ge=1, le=1000),
) -> Response:
    def build(ctx: ApiContext, _: TokenRecord) -> dict[str, Any]:
        found = _cells(ctx)
        page = matrix.matrix(
            found, region=region, ring=ring, health=health, offset=offset, limit=limit
        )
        filters = {"region": region, "ring": ring, "health": health, "limit": limit}
        return {
            "fleet": fleet_summary(ctx.store, found),
            "groups": matrix.groups(found),
            "page": page,
            "filters": {k: v for k, v in filters.items() if v is not None},
        }

    return _page(request, "overview.html", build)


def _rollout(request: Request, rollout_id: int | None, template: str) -> Response:
    def build(ctx: ApiContext, token: TokenRecord) -> dict[str, Any]:
        view = panels.rollout_panel(ctx.store, rollout_id)
        if view is None and rollout_id is not None:
            raise HTTPException(404, f"no rollout #{rollout_id}")
        operator = session.is_operator(token)
        return {
            "rollout": view,
            "actions": panels.actions(view) if view is not None and operator else [],
            "recent": rollouts.rollouts(ctx.store, 10) if template == "rollout.html" else [],
        }

    return _page(request, template, build)


@router.get("/rollout", response_class=HTMLResponse)
def rollout_latest(request: Request) -> Response:
    return _rollout(request, None, "rollout.html")


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_one(request: Request, rollout_id: int) -> Response:
    return _rollout(request, rollout_id, "rollout.html")


@router.get("/rollout/panel", response_class=HTMLResponse)
def rollout_panel(request: Request, id: int | None = None) -> Response:
    """The live part of the rollout page, fetched again when an event arrives."""
    return _rollout(request, id, "rollout_panel.html")


@router.get("/revisions", response_class=HTMLResponse)
def revisions(request: Request, limit: int = Query(50, ge=1, le=1000)) -> Response:
    def build(ctx: ApiContext, _: TokenRecord) -> dict[str, Any]:
        state_dir = ctx.state.get("state_dir")
        found = image_verdicts(state_dir) if isinstance(state_dir, Path) else []
        return {"revisions": history.revisions(ctx.store, limit), "images": found}

    return _page(request, "revisions.html", build)


@router.get("/cells/{name}", response_class=HTMLResponse)
def cell(request: Request, name: str) -> Response:
    def build(ctx: ApiContext, _: TokenRecord) -> dict[str, Any]:
        found = cell_queries.cell(ctx.store, ctx.observe, name, ctx.desired())
        if found is None:
            raise HTTPException(404, f"no cell {name!r} in the ledger or the current revision")
        events = history.events(ctx.store, EventFilter(cell=name), 25)["events"]
        state_dir = ctx.state.get("state_dir")
        logs = []
        if isinstance(state_dir, Path) and found["backend"] == "local":
            logs = tails(state_dir, name, [s["service"] for s in found["services"]])
        return {"cell": found, "events": events, "logs": logs}

    return _page(request, "cell.html", build)


@router.get("/events", response_class=HTMLResponse)
def events(  # noqa: PLR0917 - query parameters
    request: Request,
    kind: str | None = None,
    cell: str | None = None,
    service: str | None = None,
    before: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    def build(ctx: ApiContext, _: TokenRecord) -> dict[str, Any]:
        where = EventFilter(kind=(kind,) if kind else (), cell=cell, service=service, before=before)
        filters = {"kind": kind, "cell": cell, "service": service}
        return {
            "page": history.events(ctx.store, where, limit),
            "filters": {k: v for k, v in filters.items() if v},
            "live": before is None,
        }

    return _page(request, "events.html", build)


@router.get("/dora", response_class=HTMLResponse)
def dora(request: Request, window: str = "30d") -> Response:
    def build(ctx: ApiContext, _: TokenRecord) -> dict[str, Any]:
        if window not in panels.WINDOWS:
            choices = ", ".join(panels.WINDOWS)
            raise HTTPException(422, f"window: {window!r} is not one of {choices}")
        return panels.dora_page(ctx.store, ctx.clock(), window)

    return _page(request, "dora.html", build)
