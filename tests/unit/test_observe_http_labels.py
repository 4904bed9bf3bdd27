"""The request timer's labels stay bounded whatever a client sends: an unauthenticated
client may use any token as a method, and each new label value is a histogram kept for
good (memory, and every scrape)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.applications import Starlette

from cellops.observe.http import RequestTimer
from cellops.observe.metrics import ControllerMetrics
from cellops.store.sqlite import SqliteStore


def test_an_unknown_method_is_labelled_other(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    app = RequestTimer(Starlette(), metrics)

    async def call(method: str) -> None:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_: dict[str, object]) -> None:
            pass

        scope = {"type": "http", "method": method, "path": "/", "headers": [], "query_string": b""}
        await app(scope, receive, send)  # type: ignore[arg-type]

    try:
        for index in range(20):
            asyncio.run(call(f"X{index}"))
        asyncio.run(call("GET"))
        methods = {
            labels[0]
            for labels in metrics.api_request._metrics  # the children made so far
        }
    finally:
        metrics.close()
        store.close()
    assert methods == {"other", "GET"}
