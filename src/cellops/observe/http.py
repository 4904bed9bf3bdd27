"""`/metrics` on the controller's listener, and the API's request latency.

`metrics_route(metrics)` is a Starlette route the listener's app mounts (the API adds its
bearer-token check in front of it); `RequestTimer` is ASGI middleware that observes every
request's duration by method (the usual ones, else `other`), route template (never the raw
path: bounded label values) and status code.
"""

from __future__ import annotations

import time

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cellops.observe.metrics import ControllerMetrics


def metrics_response(metrics: ControllerMetrics) -> Response:
    """The text format 0.0.4, which every Prometheus 2 reads (the names are all legacy)."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def metrics_route(metrics: ControllerMetrics, path: str = "/metrics") -> Route:
    def scrape(_: Request) -> Response:  # sync: Starlette runs it on its thread pool
        return metrics_response(metrics)

    return Route(path, scrape, methods=["GET"])


class RequestTimer:
    """ASGI middleware: `cellops_api_request_duration_seconds{method, route, code}`."""

    def __init__(self, app: ASGIApp, metrics: ControllerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            self.metrics.api_request.labels(_method(scope), _route(scope), str(status)).observe(
                time.perf_counter() - start
            )


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    """The request's method, or `other`: a client may send any token as a method (before
    any token check), and each new label value would be a new histogram kept for good."""
    method = str(scope.get("method", ""))
    return method if method in METHODS else "other"


def _route(scope: Scope) -> str:
    """The matched route's template (`/api/v1/cells/{cell}`), or `other`."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else "other"
