"""A notification is never re-sent where a receiver's redirect points: urllib would
follow a 302 as a GET, with the delivery's headers, to any host (an internal one too)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from cellops.notify.notifier import PERMANENT, post
from tests.httpkit import serving


class _Handler(BaseHTTPRequestHandler):
    followed: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(302)
        self.send_header("Location", "/internal-admin")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        _Handler.followed.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    with serving(_Handler) as port:
        yield f"http://127.0.0.1:{port}/hook"


def test_a_redirect_is_not_followed_and_not_delivered(receiver: str) -> None:
    _Handler.followed.clear()
    status = post(receiver, b"{}", {"Content-Type": "application/json"}, 5.0)
    assert status == 302
    assert _Handler.followed == []
    assert status in PERMANENT
