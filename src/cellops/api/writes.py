"""POST /api/v1/rollout/... and /api/v1/rollback: steer the rollout (operator role).

Each is the same store change the CLI makes (`controller/operator.py`), recorded with the
token's name; the controller is woken to act on it at once. 202 with what was recorded;
409 when there is nothing to act on or the rollout is in another state, 404 for an unknown
cell, service or wave."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from cellops.api.auth import context, operator
from cellops.controller import operator as requests
from cellops.store.sqlite import SqliteStore

router = APIRouter(prefix="/api/v1", tags=["write"], dependencies=[operator])
STATUS = {"none": 409, "conflict": 409, "unknown": 404}


class Approval(BaseModel):
    wave: str | None = Field(None, description="default: the manual wave the rollout waits at")


class RollbackRequest(BaseModel):
    cell: str | None = Field(None, description="a cell to return to its last good state")
    service: str | None = Field(
        None,
        description="or a service: each cell where it is unproven returns to its last good state",
    )


def _do(request: Request, action: Callable[[SqliteStore, float, str], str]) -> dict[str, Any]:
    ctx = context(request)
    by = f"token {request.state.token.name!r}"
    try:
        message = action(ctx.store, ctx.clock(), by)
    except requests.Refused as refused:
        raise HTTPException(STATUS[refused.kind], str(refused)) from None
    ctx.snapshot.invalidate()
    ctx.wake()
    return {"message": message}


def _steer(what: str) -> Callable[[Request], dict[str, Any]]:
    def endpoint(request: Request) -> dict[str, Any]:
        return _do(request, lambda store, now, by: requests.steer(store, what, now, by))

    endpoint.__name__ = f"rollout_{what}"
    return endpoint


for _what, _doc in (
    ("pause", "Stop advancing the running rollout; cells keep what they have"),
    ("resume", "Go on from where the rollout was paused"),
    ("abort", "End the running rollout: no further cell gets its revision"),
):
    router.add_api_route(
        f"/rollout/{_what}", _steer(_what), methods=["POST"], status_code=202, summary=_doc
    )


@router.post(
    "/rollout/retry", status_code=202, summary="Roll a halted or aborted rollout out again"
)
def retry(request: Request) -> dict[str, Any]:
    return _do(request, requests.retry)


@router.post("/rollout/promote", status_code=202, summary="End the current wave's bake early")
def promote(request: Request) -> dict[str, Any]:
    return _do(request, requests.promote)


@router.post("/rollout/approve", status_code=202, summary="Let the rollout enter a manual wave")
def approve(request: Request, body: Approval | None = None) -> dict[str, Any]:
    wave = body.wave if body is not None else None
    return _do(request, lambda store, now, by: requests.approve(store, now, wave, by))


@router.post(
    "/rollback", status_code=202, summary="Return a cell or a service to its last good state"
)
def rollback(request: Request, body: RollbackRequest) -> dict[str, Any]:
    return _do(
        request,
        lambda store, now, by: requests.rollback(
            store, now, cell=body.cell, service=body.service, by=by
        ),
    )
