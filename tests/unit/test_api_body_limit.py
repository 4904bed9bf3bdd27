"""Request bodies are bounded before any route reads them: FastAPI reads a write's JSON
body before it checks the bearer token, so without the bound anyone who reaches the
listener could make the controller hold a body of any size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cellops.api.app import create_app
from cellops.api.context import ApiContext
from cellops.api.limits import MAX_API_BODY
from cellops.store.sqlite import SqliteStore

CHUNK = 64 * 1024


def _call(app: object, path: str, chunks: int, declared: int | None) -> tuple[int, int]:
    """POST `chunks` chunks of CHUNK bytes to `path` without a token; (status, bytes the
    app pulled)."""
    pulled, status = [0], [0]
    sent = [0]

    async def receive() -> dict[str, object]:
        if sent[0] >= chunks:
            return {"type": "http.disconnect"}
        sent[0] += 1
        pulled[0] += CHUNK
        last = sent[0] == chunks
        body = b" " * (CHUNK - 2) + (b"{}" if last else b"  ")  # JSON once it is whole
        return {"type": "http.request", "body": body, "more_body": not last}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            status[0] = int(message["status"])  # type: ignore[call-overload]

    headers = [(b"content-type", b"application/json"), (b"host", b"controller")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.9", 4444),
        "server": ("127.0.0.1", 8470),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    return status[0], pulled[0]


@pytest.fixture
def app(tmp_path: Path) -> object:
    return create_app(ApiContext(SqliteStore(tmp_path / "cellops.db")))


@pytest.mark.parametrize("path", ["/api/v1/rollback", "/api/v1/rollout/approve"])
def test_a_chunked_body_without_a_token_is_cut_off_at_the_limit(app: object, path: str) -> None:
    status, pulled = _call(app, path, chunks=100, declared=None)  # 6.4 MB
    assert status == 413
    assert pulled <= MAX_API_BODY + CHUNK


def test_a_body_declared_too_large_is_refused_unread(app: object) -> None:
    status, pulled = _call(app, "/api/v1/rollback", chunks=100, declared=100 * CHUNK)
    assert (status, pulled) == (413, 0)


def test_a_small_body_without_a_token_still_gets_401(app: object) -> None:
    status, _ = _call(app, "/api/v1/rollback", chunks=1, declared=CHUNK)
    assert status == 401
