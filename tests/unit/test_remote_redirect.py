"""The remote CLI does not follow a redirect: urllib would send the bearer token on to
whatever host the redirect names (a sign-in proxy's, another host, plain http://)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import typer

from cellops.cli.remote import Remote

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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_is_refused_and_the_token_not_sent_on(server: str) -> None:
    _Handler.seen.clear()
    with pytest.raises(typer.Exit):
        Remote(server, TOKEN).get("/api/v1/fleet")
    assert _Handler.seen == []
