"""The controller's side of the router: the routing table of each accepted revision,
published next to its state (`<state>/routing.json`), atomically and versioned."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from cellops.router.tablefile import publish, read_table
from cellops.spec.revision import Revision
from cellops.tenancy.fleet import routing_table
from cellops.tenancy.table import RoutingTable, TableError

TABLE_FILE = "routing.json"


def publish_revision(path: Path, revision: Revision, unbaked: Collection[str] = ()) -> RoutingTable:
    """Place the revision's tenants and write the table (a new version only if it changed).
    Tenants the table on disk does not list yet are new: they keep off `unbaked` cells."""
    try:
        previous: RoutingTable | None = read_table(path)
    except TableError:
        previous = None
    table = routing_table(
        revision.fleet,
        revision.cells,
        revision.tenants,
        revision.id,
        1,
        unbaked=unbaked,
        previous=previous.tenants if previous is not None else None,
    )
    return publish(path, table)


class TablePublisher:
    """`publish_revision` at one path, remembering the table it wrote last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table: RoutingTable | None = None

    def __call__(self, revision: Revision, unbaked: Collection[str] = ()) -> RoutingTable:
        self._table = publish_revision(self.path, revision, unbaked)
        return self._table

    def current(self) -> RoutingTable | None:
        """The table in use: the last one written, else the file's (None: none yet)."""
        if self._table is None:
            try:
                self._table = read_table(self.path)
            except TableError:
                return None
        return self._table
