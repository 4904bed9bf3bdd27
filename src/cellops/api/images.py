"""GET /api/v1/images: each image's verdict (digest, signer, time, reason) (viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from cellops.api.auth import context, viewer
from cellops.query.images import images as image_verdicts

router = APIRouter(prefix="/api/v1", tags=["read"], dependencies=[viewer])


@router.get("/images", summary="Each image's signature verdict: digest, signer, time, reason")
def images(request: Request) -> dict[str, Any]:
    state_dir = context(request).state.get("state_dir")
    if not isinstance(state_dir, Path):
        raise HTTPException(503, "this listener does not know the controller's state folder")
    return {"images": image_verdicts(state_dir)}
