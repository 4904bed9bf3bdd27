"""The API app: `create_app(context)` with every router included. More routers (the
dashboard, /metrics) are passed in `extra`, or included by the caller afterwards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cellops import __version__
from cellops.api import images, reads, stream, writes
from cellops.api.auth import viewer
from cellops.api.context import ApiContext
from cellops.api.limits import BodyLimit
from cellops.source.webhook import MAX_BODY, webhook_route


def create_app(ctx: ApiContext, extra: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="cellops",
        version=__version__,
        description="The cellops controller: read the fleet, steer its rollouts. Every path"
        " but /healthz and /webhook needs `Authorization: Bearer <token>`"
        " (`cellops token create`); writes need the operator role.",
        openapi_url=None,  # served below, to token holders like every other path
        docs_url=None,
        redoc_url=None,
    )
    app.state.cellops = ctx
    from cellops.dashboard.pages import router as dashboard  # the pages at / (Jinja2)

    for router in (reads.router, images.router, stream.router, writes.router, dashboard, *extra):
        app.include_router(router)
    if ctx.webhook:
        app.router.routes.append(webhook_route(ctx.webhook_secret, ctx.wake, MAX_BODY))
    # before any route reads a body (FastAPI reads it before it checks the token)
    app.add_middleware(BodyLimit, larger={"/webhook": MAX_BODY})

    @app.get("/healthz", tags=["open"], summary="The controller answers (no token needed)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/openapi.json", tags=["read"], dependencies=[viewer], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    return app
