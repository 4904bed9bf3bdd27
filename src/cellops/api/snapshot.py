"""The fleet's cells as the read models build them, shared by the requests that need all
of them (/fleet, /cells, /services).

Building them for 1,000 cells x 50 services is 50,000 ledger rows and observations: far
more than a request may take. So a snapshot is kept and rebuilt in the background when a
request finds it older than `ttl` (stale while it is rebuilt; at most every `ttl`, or 8x
the last build's time when that is longer, so the controller's process is never kept
busy by it); only the first request waits for a build. Nothing is rebuilt while no one
asks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellops.api.fleetview import CellView

Cells = list[dict[str, Any]]


@dataclass(frozen=True)
class FleetView:
    cells: Cells
    services: list[dict[str, Any]]  # per service, from `cells`
    number: int = 0  # which build: answers made from it are kept until the next one
    blobs: tuple[bytes, ...] = ()  # each cell's view as JSON, made once

    def page(self, chosen: list[int], total: int) -> bytes:
        """`{"total": total, "cells": [...]}` of the cells at `chosen`, as JSON."""
        return b'{"total":%d,"cells":[%s]}' % (total, b",".join(self.blobs[i] for i in chosen))


Build = Callable[[], tuple[list["CellView"], bool]]


class Snapshot:
    """`build`: every cell's view, and whether any changed since the last build (else
    the view keeps its number, and the answers made from it stay valid)."""

    def __init__(self, build: Build, ttl: float = 1.0) -> None:
        self._build = build
        self._ttl = ttl
        self._value: FleetView | None = None
        self._built_at = 0.0
        self._took = 0.0
        self._lock = threading.Lock()
        self._building = threading.Lock()

    def get(self) -> FleetView:
        return self.peek() or self.rebuild()

    def peek(self) -> FleetView | None:
        """The view as it is (a rebuild started in the background when it is stale), or
        None before the first build: then `get` waits for it."""
        with self._lock:
            value, age = self._value, time.monotonic() - self._built_at
            stale = age > max(self._ttl, 8 * self._took)
        if value is not None and stale and not self._building.locked():
            threading.Thread(target=self.rebuild, name="api-snapshot", daemon=True).start()
        return value

    def rebuild(self) -> FleetView:
        from cellops.query.cells import services

        with self._building:
            start = time.monotonic()
            views, changed = self._build()
            value = self._value
            if value is None or changed:
                cells = [v.view for v in views]
                number = value.number + 1 if value is not None else 1
                value = FleetView(cells, services(cells), number, tuple(v.json for v in views))
            with self._lock:
                self._value, self._built_at = value, time.monotonic()
                self._took = self._built_at - start
            return value

    def invalidate(self) -> None:
        """A write was recorded: the next request rebuilds in the background at once."""
        with self._lock:
            self._built_at = 0.0


class Answers:
    """Answers made from the store alone, kept until the store changes: a 1,000-cell
    rollout is megabytes of JSON, and a dashboard asks for it again and again."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._kept: dict[str, tuple[object, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, version: object, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            hit = self._kept.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        body = make()
        with self._lock:
            self._kept.pop(key, None)
            if len(self._kept) >= self._size:  # the oldest goes, not the big ones asked often
                del self._kept[next(iter(self._kept))]
            self._kept[key] = (version, body)
        return body
