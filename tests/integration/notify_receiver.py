"""A webhook receiver on 127.0.0.1 for the notification tests: verifies
`X-Cellops-Signature-256` with its own secret (401 when it does not match) and keeps what
it accepted. Start it on port 0, or on a port chosen earlier (down, then up)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret.encode()
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sent = self.headers.get("X-Cellops-Signature-256", "")
                good = "sha256=" + hmac.new(owner.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(sent.encode(), good.encode())
                if ok:
                    owner.accepted.append({"headers": dict(self.headers), "body": json.loads(body)})
                else:
                    owner.refused += 1
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def kinds(self) -> list[str]:
        return [str(a["body"].get("kind")) for a in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
