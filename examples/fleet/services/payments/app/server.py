"""Payments: takes a payment and records it in the ledger of the same cell (ledger/v1)."""

import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0.0"
CELL = os.environ.get("CELLOPS_CELL", "unknown")
CURRENCY = os.environ.get("CURRENCY", "EUR")
LEDGER_URL = os.environ.get("LEDGER_URL", "")  # the ledger/v1 provider in this cell


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/healthz", "/livez"):
            self.reply(200, {"status": "ok"})
        elif self.path == "/":
            self.reply(
                200,
                {
                    "service": "payments",
                    "version": VERSION,
                    "cell": CELL,
                    "currency": CURRENCY,
                    "ledger": LEDGER_URL or None,
                },
            )
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/pay":
            self.reply(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            amount = float(json.loads(self.rfile.read(length) or b"{}")["amount"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            self.reply(400, {"error": "expected a JSON body with a numeric 'amount'"})
            return
        if not LEDGER_URL:
            self.reply(503, {"error": "no ledger/v1 provider configured (LEDGER_URL)"})
            return
        entry = json.dumps({"amount": amount, "currency": CURRENCY}).encode()
        request = urllib.request.Request(
            LEDGER_URL.rstrip("/") + "/entries",
            data=entry,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                recorded = json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            self.reply(502, {"error": f"ledger unavailable: {exc}"})
            return
        self.reply(201, {"paid": amount, "currency": CURRENCY, "ledger": recorded})

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
