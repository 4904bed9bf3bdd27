"""The listener against slow clients: connections sending their headers a byte at a time
(slow-loris) are closed at the header deadline, and while 80 of them are connected a
normal client is still served (uvicorn counted them against its limit and answered 503)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cellops.api.app import create_app
from cellops.api.context import ApiContext
from cellops.api.guard import InFlight
from cellops.api.listener import MAX_CONNECTIONS, Listener
from cellops.store.sqlite import SqliteStore

SLOW = MAX_CONNECTIONS + 16


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    ctx = ApiContext(SqliteStore(tmp_path / "cellops.db"))
    listener = Listener(create_app(ctx), "127.0.0.1", 0, header_timeout=3.0)
    try:
        yield listener.start()
    finally:
        listener.stop()
        ctx.close()


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # and nothing more, for now
        clients.append(client)
    return clients


def _closed(client: socket.socket, deadline: float) -> bool:
    """The server closed it: a byte sent later is answered with end of file."""
    client.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        client.sendall(b"s")
        return client.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.mark.slow
def test_a_normal_client_is_served_while_slow_ones_hold_connections(port: int) -> None:
    clients = _slow_clients(port, SLOW)
    try:
        for client in clients[:8]:  # still trickling in, byte by byte
            client.sendall(b"s")
        answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_slow_headers_are_cut_off_at_the_deadline(port: int) -> None:
    clients = _slow_clients(port, 8)
    try:
        deadline = time.monotonic() + 60
        assert all(_closed(client, deadline) for client in clients)
        answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200
    finally:
        for client in clients:
            client.close()


def test_requests_in_flight_beyond_the_limit_are_503_with_retry_after() -> None:
    sent: list[dict[str, object]] = []

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached beyond the limit")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    guard = InFlight(app, 1)
    guard.count = 1  # one request in flight already
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(guard(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 503
    assert (b"retry-after", b"1") in sent[0]["headers"]  # type: ignore[operator]
