"""Push webhooks: a commit reaches the controller at once instead of at the next poll.

GitHub signs the body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`); GitLab
sends a shared token (`X-Gitlab-Token`). Anything else, or a bad signature, gets 401 and
changes nothing. With no secret configured every request is refused.

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
import os
import socket
import threading
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cellops.model.errors import StartupError

MAX_BODY = 4 << 20  # a push payload is kilobytes; GitHub caps any payload at 25 MB
MAX_CONNECTIONS = 32  # so that at most this many bodies are held at once
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
    secret: str | None, on_push: Callable[[], None], max_body: int = MAX_BODY
) -> Starlette:
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

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhook", receive, methods=["POST"]), Route("/healthz", healthz)]
    )


class WebhookServer:
    """The webhook app on a background thread, bound to `host:port` (port 0: any free)."""

    def __init__(
        self,
        secret: str | None,
        on_push: Callable[[], None],
        host: str,
        port: int,
        max_body: int = MAX_BODY,
    ) -> None:
        config = uvicorn.Config(
            webhook_app(secret, on_push, max_body),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            limit_concurrency=MAX_CONNECTIONS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="webhook", daemon=True)

    def start(self, timeout: float = 10) -> int:
        """Listen (the socket is bound here, so a port in use is one clear error) and
        serve on a thread; the port it listens on."""
        host, port = self._server.config.host, self._server.config.port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listening = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise StartupError(
                f"the webhook cannot listen on {host}:{port} ({_reason(exc)}): choose"
                " another --webhook port, or 0 for any free one"
            ) from None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listening]}, name="webhook", daemon=True
        )
        self._thread.start()
        self._thread.join(0.01)
        waited = 0.0
        while not self._server.started and waited < timeout:
            self._thread.join(0.02)
            waited += 0.02
        if not self._server.started:
            raise StartupError(f"the webhook on {host}:{port} did not start in {timeout:.0f}s")
        return int(listening.getsockname()[1])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)
