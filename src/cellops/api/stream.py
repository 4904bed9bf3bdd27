"""GET /api/v1/events/stream: the events as Server-Sent Events, live (viewer).

Each event is sent once as `id: <event id>`, `event: <kind>`, `data: <JSON>`; a client that
reconnects with `Last-Event-ID` (EventSource does) gets what it missed. The store is read
every `POLL` seconds, whoever wrote the event (the controller, a CLI on this host). A
comment line every `HEARTBEAT` seconds keeps proxies from closing an idle stream. At most
`MAX_STREAMS` streams at once, so they cannot use up the listener's connections, and at
most `PER_TOKEN` of them for one token (429 beyond), so one viewer cannot hold them all.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from cellops.api.auth import context, viewer
from cellops.query.history import event_view
from cellops.store.eventquery import EventFilter

POLL = 0.1
HEARTBEAT = 15.0
MAX_STREAMS = 16
PER_TOKEN = 4

router = APIRouter(prefix="/api/v1", tags=["read"], dependencies=[viewer])
_open = [0]
_by_token: dict[tuple[int, int], int] = {}  # (the store's, the token's id) -> its streams
_lock = threading.Lock()


@router.get(
    "/events/stream",
    summary="Events as Server-Sent Events, from `after` (or Last-Event-ID), else from now",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    kind: list[str] = Query(default=[]),  # noqa: B008
    cell: str | None = None,
    after: int | None = None,
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    store = context(request).store
    start = after if after is not None else _int(last_event_id)
    if start is None:
        start = await run_in_threadpool(store.last_event_id)
    token = (id(store), int(request.state.token.id))
    with _lock:
        if _by_token.get(token, 0) >= PER_TOKEN:
            raise HTTPException(
                429,
                f"this token has {PER_TOKEN} event streams open already: close one (another"
                " tab of the dashboard?) or use another token",
                headers={"Retry-After": "30"},
            )
        if _open[0] >= MAX_STREAMS:
            raise HTTPException(
                503,
                f"{MAX_STREAMS} event streams are open: try again later",
                headers={"Retry-After": "30"},
            )
        _open[0] += 1
        _by_token[token] = _by_token.get(token, 0) + 1
    slot = _Slot(token)
    where = EventFilter(kind=tuple(kind), cell=cell, after=start)
    return StreamingResponse(
        _events(request, where, slot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(slot.release),  # also when the stream never started
    )


class _Slot:
    """A stream's place in the counts, given back once (when the stream ends, or when
    the client left before it began)."""

    def __init__(self, token: tuple[int, int]) -> None:
        self.token, self.held = token, True

    def release(self) -> None:
        with _lock:
            if not self.held:
                return
            self.held = False
            _open[0] -= 1
            _by_token[self.token] -= 1
            if not _by_token[self.token]:
                del _by_token[self.token]


async def _events(request: Request, where: EventFilter, slot: _Slot) -> AsyncIterator[str]:
    store = context(request).store
    quiet = 0.0
    try:
        yield ": cellops events\n\n"
        while not await request.is_disconnected():
            found = await run_in_threadpool(store.find_events, where, 200)
            for event in found:
                data = json.dumps(event_view(event), separators=(",", ":"))
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"
            if found:
                where = EventFilter(where.kind, where.cell, after=found[-1].id)
                quiet = 0.0
                continue
            await asyncio.sleep(POLL)
            quiet += POLL
            if quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": keep-alive\n\n"
    finally:
        slot.release()


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None
