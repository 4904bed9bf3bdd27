"""The ledger without the rendered states (a part of `SqliteStore`), for the read models:
a 1,000-cell x 50-service ledger is 50,000 rows, and their specs are most of its bytes."""

from __future__ import annotations

import threading
from typing import NamedTuple

from cellops.store.tables import Tables


class BriefRow(NamedTuple):
    """A ledger row without its rendered states (a tuple: 50,000 are made at once)."""

    cell: str
    service: str
    applied_rev: str | None
    applied_hash: str | None
    healthy_rev: str | None
    good_rev: str | None
    good_hash: str | None
    updated_at: float


class BriefTables(Tables):
    _lock: threading.RLock  # SqliteStore's: one statement at a time on its connection

    def ledger_brief(self, cell: str | None = None) -> list[BriefRow]:
        """Like `ledger_rows`, without `applied_spec`, `good_spec` and `depends_on`."""
        sql = (
            "SELECT cell, service, applied_rev, applied_hash, healthy_rev, good_rev, good_hash,"
            " updated_at FROM ledger"
            + (" WHERE cell = ?" if cell else "")
            + " ORDER BY cell, service"
        )
        with self._lock:
            cursor = self._db.execute(sql, (cell,) if cell else ())
            cursor.row_factory = None  # plain tuples, made in C
            return [BriefRow._make(r) for r in cursor.fetchall()]

    def applied_cells(self) -> dict[str, str]:
        """Each cell as last applied (`render.stored.cell_json`), by name."""
        rows = self._all("SELECT cell, applied_cell FROM cells WHERE applied_cell IS NOT NULL")
        return {str(r[0]): str(r[1]) for r in rows}

    def version(self) -> tuple[int, int]:
        """Changes if anything was committed since: by another connection (`data_version`)
        or by this one (`total_changes`)."""
        rows = self._all("PRAGMA data_version")
        return int(rows[0][0]), self._db.total_changes
