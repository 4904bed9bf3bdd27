"""The example fleet's apps are real HTTP services: start them and talk to them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.fleetrepo import EXAMPLE_FLEET


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(service: str, **env: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=EXAMPLE_FLEET / "services" / service / "app",
        env={"PORT": str(port), "CELLOPS_CELL": "eu-1", **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.loads(response.read()))


def post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.loads(error.read()))


def test_payments_records_into_the_ledger_of_its_cell() -> None:
    with serving("ledger") as ledger, serving("payments", LEDGER_URL=ledger) as payments:
        assert get(ledger + "/") == {
            "service": "ledger",
            "version": "1.0.0",
            "cell": "eu-1",
            "entries": 0,
        }
        assert get(payments + "/livez") == {"status": "ok"}
        status, paid = post(payments + "/pay", {"amount": 12.5})
        assert status == 201
        assert paid["ledger"] == {"entry": 1, "cell": "eu-1"}
        assert get(ledger + "/")["entries"] == 1
        assert post(payments + "/pay", {"amount": "lots"})[0] == 400


def test_payments_without_a_ledger_says_so() -> None:
    with serving("payments") as payments:
        status, body = post(payments + "/pay", {"amount": 1})
        assert status == 503
        assert "LEDGER_URL" in str(body["error"])
