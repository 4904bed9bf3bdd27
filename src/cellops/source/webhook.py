"""Push webhooks: a commit reaches the controller at once instead of at the next poll.

GitHub signs the body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`); GitLab
sends a shared token (`X-Gitlab-Token`). Anything else, or a bad signature, gets 401 and
changes nothing. With no secret configured every request is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def verify(secret: str | None, body: bytes, headers: dict[str, str]) -> bool:
    if not secret:
        return False
    signature = headers.get("x-hub-signature-256")
    if signature is not None:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature, expected)
    token = headers.get("x-gitlab-token")
    return token is not None and hmac.compare_digest(token, secret)


def webhook_app(secret: str | None, on_push: Callable[[], None]) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify(secret, body, {k.lower(): v for k, v in request.headers.items()}):
            return JSONResponse({"error": "bad or missing signature"}, status_code=401)
        on_push()
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhook", receive, methods=["POST"]), Route("/healthz", healthz)]
    )


class WebhookServer:
    """The webhook app on a background thread, bound to `host:port` (port 0: any free)."""

    def __init__(
        self, secret: str | None, on_push: Callable[[], None], host: str, port: int
    ) -> None:
        config = uvicorn.Config(
            webhook_app(secret, on_push), host=host, port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="webhook", daemon=True)

    def start(self, timeout: float = 10) -> int:
        self._thread.start()
        self._thread.join(0.01)
        waited = 0.0
        while not self._server.started and waited < timeout:
            self._thread.join(0.02)
            waited += 0.02
        if not self._server.started:
            raise RuntimeError("the webhook server did not start")
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
