"""The remote CLI does not follow a redirect: urllib would send the bearer token on to
whatever host the redirect names (a sign-in proxy's, another host, plain http://)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from cellops.cli.remote import Remote
from tests.httpkit import serving

TOKEN = "cellops_secret"


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        if self.path.startswith("/api/"):
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/collect")
        else:
            _Handler.seen.append(self.headers.get("Authorization"))
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serving(_Handler) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_redirect_is_refused_and_the_token_not_sent_on(server: str) -> None:
    _Handler.seen.clear()
    with pytest.raises(SystemExit):
        Remote(server, TOKEN).get("/api/v1/fleet")
    assert _Handler.seen == []
