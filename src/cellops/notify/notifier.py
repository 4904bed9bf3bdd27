"""Delivering notifications, off the reconcile loop: a thread of its own follows the
store's events (its own connection: WAL readers never wait for the controller), posts
each notified one to every target that wants it, retries a failure with exponential
back-off (bounded: `attempts` tries in all), and records every attempt in the store's
`notify_deliveries`.

A receiver's 2xx is delivered; a 3xx (never followed: it could point the controller at an
internal host) or a 4xx other than 408 and 429 is refused for good (a bad signature, a
wrong URL: retrying changes nothing); anything else (5xx, no answer, a
refused connection) is tried again. The cursor (`notify.cursor` in the store's settings)
moves past an event once every target is done with it, so a controller restarted
mid-delivery delivers the rest; a first start begins at the newest event, not history.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from cellops.notify.config import Target
from cellops.notify.messages import TITLES, Notice, backoff, body, headers
from cellops.observe.dora import iso
from cellops.store.database import open_database

CURSOR = "notify.cursor"
PERMANENT = frozenset(range(300, 500)) - {408, 429}  # a redirect is not followed, nor retried
ERROR_PAUSE = 5.0

Send = Callable[[str, bytes, dict[str, str], float], int]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer, not followed: urllib would re-send the
    request (as a GET, with our headers) to whatever host it names, an internal one too."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def post(url: str, payload: bytes, sent_headers: dict[str, str], timeout: float) -> int:
    """POST `payload`; the HTTP status (an error or redirect status too); OSError when no
    answer. Redirects are not followed."""
    request = urllib.request.Request(url, payload, sent_headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Notifier:
    def __init__(
        self,
        database: Path,
        targets: Sequence[Target],
        *,
        fleet: str = "",
        attempts: int = 6,
        base: float = 1.0,
        cap: float = 60.0,
        timeout: float = 5.0,
        poll: float = 0.5,
        send: Send = post,
    ) -> None:
        self._db = open_database(database)
        self.targets, self.fleet = list(targets), fleet
        self.attempts, self.base, self.cap, self.timeout, self.poll = (
            attempts,
            base,
            cap,
            timeout,
            poll,
        )
        self._send = send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)

    def start(self) -> None:
        if self._setting(CURSOR) is None:  # first start: from now on, not the history
            row = self._db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
            self._set_cursor(int(row[0]))
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except sqlite3.Error:  # the store busy or failing: said, and tried again
                traceback.print_exc()
                self._stop.wait(ERROR_PAUSE)
            self._stop.wait(self.poll)

    def _round(self) -> None:
        for notice in self._pending():
            for target in self.targets:
                if notice.kind in target.events and not self._deliver(notice, target):
                    if self._stop.is_set():
                        return  # stopped mid-retries: the cursor stays, a restart goes on
            self._set_cursor(notice.id)

    def _pending(self) -> list[Notice]:
        cursor = int(self._setting(CURSOR) or 0)
        kinds = ", ".join("?" for _ in TITLES)
        rows = self._db.execute(
            "SELECT id, kind, at, message, cell, service, revision, rollout FROM events"
            f" WHERE id > ? AND kind IN ({kinds}) ORDER BY id LIMIT 100",
            (cursor, *TITLES),
        ).fetchall()
        return [Notice(r[0], r[1], iso(r[2]), *r[3:]) for r in rows]

    def _deliver(self, notice: Notice, target: Target) -> bool:
        """Try until delivered, refused for good or out of attempts; True if delivered."""
        payload = body(notice, target.format, self.fleet)
        sent_headers = headers(notice, payload, target.secret)
        for attempt in range(1, self.attempts + 1):
            status, error = None, ""
            try:
                status = self._send(target.url, payload, sent_headers, self.timeout)
            except (OSError, ValueError) as exc:
                error = str(getattr(exc, "reason", None) or exc)
            delivered = status is not None and 200 <= status < 300
            self._record(notice.id, target.name, attempt, (status, error, delivered))
            if delivered or status in PERMANENT:
                return delivered
            if attempt < self.attempts and self._stop.wait(backoff(attempt, self.base, self.cap)):
                return False
        return False

    def _record(
        self, event: int, target: str, attempt: int, outcome: tuple[int | None, str, bool]
    ) -> None:
        status, error, ok = outcome
        with self._db:
            self._db.execute(
                "INSERT INTO notify_deliveries (event, target, attempt, at, status, error,"
                " delivered) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event, target, attempt, time.time(), status, error[:500], int(ok)),
            )

    def _setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_cursor(self, event: int) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                " excluded.value",
                (CURSOR, str(event)),
            )
