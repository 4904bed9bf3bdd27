"""Reads are answered while a write holds the API's store connection: the token check and
the kept answers use a connection of their own on the event loop, so an operator's write
waiting for the controller's write lock stalls no viewer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from tests.apikit import serve

pytestmark = pytest.mark.slow


def test_reads_go_on_while_the_write_connection_is_held(tmp_path: Path) -> None:
    with serve(tmp_path) as api:
        held, release = threading.Event(), threading.Event()

        def writer() -> None:
            with api.store.transaction():  # the connection's lock and SQLite's write lock
                held.set()
                release.wait(120)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        assert held.wait(30)
        try:
            for path in ("/api/v1/fleet", "/api/v1/rollouts/latest", "/api/v1/events"):
                answer = requests.get(api.url + path, headers=api.headers(api.viewer), timeout=20)
                assert answer.status_code == 200, (path, answer.text)
        finally:
            release.set()
            thread.join(30)
