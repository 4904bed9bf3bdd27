"""The ledger: an append-only list of entries, one per cell. Standard library only."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0.0"
CELL = os.environ.get("CELLOPS_CELL", "unknown")
ENTRIES: list[dict[str, object]] = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/healthz", "/livez"):
            self.reply(200, {"status": "ok"})
        elif self.path == "/":
            with LOCK:
                count = len(ENTRIES)
            self.reply(
                200, {"service": "ledger", "version": VERSION, "cell": CELL, "entries": count}
            )
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/entries":
            self.reply(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            entry = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self.reply(400, {"error": "expected a JSON body"})
            return
        with LOCK:
            ENTRIES.append(entry)
            number = len(ENTRIES)
        self.reply(201, {"entry": number, "cell": CELL})

    def reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if os.environ.get("LOG_LEVEL") == "debug":
            super().log_message(format, *args)


if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer((host, port), Handler).serve_forever()
