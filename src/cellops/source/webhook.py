"""Push webhooks: a commit reaches the controller at once instead of at the next poll.

GitHub signs the body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`); GitLab
sends a shared token (`X-Gitlab-Token`). Anything else, or a bad signature, gets 401 and
changes nothing. With no secret configured every request is refused, before any of its
body is read (a signed body is read, up to `max_body`, only to check its signature).

The endpoint faces the network, so it spends nothing on a request it will refuse: a
GitLab token is checked before the body is read (the body is never needed); a body
declared larger than `max_body` is refused with 413 unread, and a chunked one is read only
up to `max_body`. Only push events wake the controller (GitHub `X-GitHub-Event: push`,
GitLab `Push Hook` and `Tag Push Hook`); GitHub's `ping` gets 200, other events 202, and
neither wakes it. Secrets and signatures are compared as bytes, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from cellops.api.listener import Listener

MAX_BODY = 4 << 20  # a push payload is kilobytes; GitHub caps any payload at 25 MB
MAX_CONNECTIONS = 32  # so that at most this many bodies are held at once (alone)
PUSHES = {"x-github-event": ("push",), "x-gitlab-event": ("Push Hook", "Tag Push Hook")}


class _Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.response = JSONResponse({"error": error}, status_code=status)


def _raw(request: Request, name: str) -> bytes | None:
    """A header's value as sent (Starlette decodes headers as Latin-1, losslessly)."""
    value = request.headers.get(name)
    return None if value is None else value.encode("latin-1")


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 beyond `limit`: by its declared length before reading,
    or as soon as a chunked body passes the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _Refused(400, "bad Content-Length")
        if int(declared) > limit:
            raise _Refused(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _authenticate(request: Request, secret: bytes, limit: int) -> str:
    """The event header that applies (GitHub's or GitLab's), once the request proves it
    knows the secret; raises `_Refused` otherwise."""
    token = _raw(request, "x-gitlab-token")
    signature = _raw(request, "x-hub-signature-256")
    if signature is not None:
        body = await _body(request, limit)
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(signature, expected):
            return "x-github-event"
    elif token is not None and hmac.compare_digest(token, secret):
        return "x-gitlab-event"
    raise _Refused(401, "bad or missing signature")


def webhook_app(
    secret: str | None,
    on_push: Callable[[], None],
    max_body: int = MAX_BODY,
    extra: Sequence[BaseRoute] = (),
) -> Starlette:
    """`extra`: more routes on the same listener (`/metrics`)."""
    routes = [webhook_route(secret, on_push, max_body), Route("/healthz", healthz), *extra]
    return Starlette(routes=routes)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def webhook_route(
    secret: str | None, on_push: Callable[[], None], max_body: int = MAX_BODY
) -> Route:
    """POST /webhook: a push wakes the controller (`on_push`)."""

    async def receive(request: Request) -> JSONResponse:
        try:
            if not secret:
                raise _Refused(401, "no webhook secret is configured: every request is refused")
            header = await _authenticate(request, secret.encode(), max_body)
        except _Refused as refused:
            return refused.response
        event = request.headers.get(header)
        if event is None:
            return JSONResponse({"error": f"missing {header} header"}, status_code=400)
        if event in PUSHES[header]:
            on_push()
            return JSONResponse({"status": "accepted"}, status_code=202)
        if header == "x-github-event" and event == "ping":
            return JSONResponse({"status": "pong"})
        return JSONResponse({"status": "ignored", "event": event}, status_code=202)

    return Route("/webhook", receive, methods=["POST"])


class WebhookServer(Listener):
    """The webhook app alone on a background thread, bound to `host:port` (port 0: any
    free); `cellops up --listen` serves it with the API instead (`cellops.api`)."""

    def __init__(
        self,
        secret: str | None,
        on_push: Callable[[], None],
        host: str,
        port: int,
        max_body: int = MAX_BODY,
        *,
        extra: Sequence[BaseRoute] = (),
    ) -> None:
        app = webhook_app(secret, on_push, max_body, extra)
        super().__init__(
            app, host, port, option="--webhook", what="the webhook", limit=MAX_CONNECTIONS
        )
