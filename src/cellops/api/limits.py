"""A bound on request bodies, before anything else reads them.

FastAPI reads a route's JSON body before it checks the route's dependencies, the bearer
token among them: without this, anyone who reaches the listener could make the controller
hold a body of any size (64 connections at once) and then get their 401. A body declared
larger than the limit is refused with 413 unread; a chunked one is refused as soon as it
passes the limit. Paths in `larger` (the webhook, which bounds its own body) get theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_API_BODY = 64 * 1024  # a write's body is a wave, a cell or a service name


class BodyLimit:
    def __init__(
        self, app: ASGIApp, limit: int = MAX_API_BODY, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app, self.limit, self.larger = app, limit, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            response = JSONResponse({"detail": f"body larger than {limit} bytes"}, status)
            await response(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"body larger than {limit} bytes")
            return message

        await self.app(scope, bounded, send)
