"""What the API reads and steers: the store, how to look at a cell, the current desired
fleet, and how to wake the controller."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cellops.api.snapshot import Answers, Snapshot
from cellops.backends.base import CellObservation
from cellops.query.base import Observe
from cellops.render import DesiredFleet
from cellops.store.sqlite import SqliteStore


@dataclass
class ApiContext:
    store: SqliteStore  # the API's own connection (WAL: readers never wait for the loop)
    observe: Observe | None = None  # one cell as last seen; None: health is not shown
    desired: Callable[[], DesiredFleet | None] = lambda: None  # the current revision's
    wake: Callable[[], None] = lambda: None  # a request recorded: the controller looks now
    webhook_secret: str | None = None
    webhook: bool = False  # serve POST /webhook (it has its own authentication)
    clock: Callable[[], float] = time.time
    state: dict[str, object] = field(default_factory=dict)  # for routers added later
    reader: SqliteStore | None = None  # a second connection, for the snapshot's builds
    # a third, used only on the event loop: the reads answered there (tokens, the API's
    # reads) never wait for a lock that a write in a worker thread holds
    live: SqliteStore | None = None
    # the dashboard's cookie is Secure also over HTTP: TLS ends at a proxy in front
    secure_cookie: bool = field(default_factory=lambda: _flag("CELLOPS_SECURE_COOKIE"))
    snapshot: Snapshot = field(init=False)
    answers: Answers = field(default_factory=Answers)  # store-only answers, by version

    def __post_init__(self) -> None:
        from cellops.api.fleetview import FleetCells

        built = FleetCells(self.reader or self.store, self.observe, self.desired)
        self.snapshot = Snapshot(built.build)

    @property
    def quick(self) -> SqliteStore:
        """The connection for reads made on the event loop."""
        return self.live or self.store

    def close(self) -> None:
        """Close the store connections (the caller's listener is stopped first)."""
        for extra in (self.reader, self.live):
            if extra is not None:
                extra.close()
        self.store.close()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class Recent:
    """Observations kept for `ttl` seconds: a page of 1,000 cells, and ten clients asking
    at once, read each cell's status once."""

    def __init__(self, observe: Observe, ttl: float = 1.0) -> None:
        self._observe = observe
        self._ttl = ttl
        self._seen: dict[str, tuple[float, CellObservation]] = {}
        self._lock = threading.Lock()

    def __call__(self, cell: str) -> CellObservation:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(cell)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        seen = self._observe(cell)
        with self._lock:
            if len(self._seen) > 65536:
                self._seen.clear()
            self._seen[cell] = (now, seen)
        return seen
