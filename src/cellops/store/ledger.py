"""The ledger and the cells' records, on the SQLite store (a part of `SqliteStore`).

Per cell and service the ledger keeps what was applied and what was last good, each with
the service as it was rendered (`applied_spec`, `good_spec`, JSON); per cell, the cell
itself as applied and as last good. A rollback and supervision read these, never an old
commit: after a force-push and `git gc` the revisions they name may be gone from Git.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from cellops.store.records import LedgerRow
from cellops.store.tables import Tables

if TYPE_CHECKING:  # a type only: the store loads no spec or renderer
    from cellops.diff import Ledger


class LedgerTables(Tables):
    def ledger_rows(self, cell: str | None = None) -> list[LedgerRow]:
        sql = (
            "SELECT * FROM ledger" + (" WHERE cell = ?" if cell else "") + " ORDER BY cell, service"
        )
        return [_ledger(r) for r in self._all(sql, *([cell] if cell else []))]

    def ledger(self) -> Ledger:
        """What each cell was last given: the `Ledger` the diff compares against."""
        out: dict[str, dict[str, LedgerRow]] = {}
        for row in self.ledger_rows():
            if row.applied_hash is not None:
                out.setdefault(row.cell, {})[row.service] = row
        return out

    def set_applied(
        self,
        cell: str,
        service: str,
        *,
        rev: str | None,
        hash_: str | None,
        depends_on: tuple[str, ...],
        now: float,
        spec: str | None = None,
    ) -> None:
        """`spec`: the service as rendered (`render.stored.service_json`); None when the
        service was deleted from the cell."""
        self._run(
            """INSERT INTO ledger (cell, service, applied_rev, applied_hash, depends_on,
               updated_at, applied_spec) VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (cell, service) DO UPDATE SET applied_rev = excluded.applied_rev,
               applied_hash = excluded.applied_hash, depends_on = excluded.depends_on,
               updated_at = excluded.updated_at, applied_spec = excluded.applied_spec""",
            cell,
            service,
            rev,
            hash_,
            json.dumps(list(depends_on)),
            now,
            spec,
        )

    def set_healthy(self, cell: str, service: str, rev: str, now: float) -> None:
        self._run(
            "UPDATE ledger SET healthy_rev = ?, updated_at = ? WHERE cell = ? AND service = ?",
            rev,
            now,
            cell,
            service,
        )

    def set_good(self, cell: str, now: float) -> None:
        """Everything applied in `cell` is now its last good state; deleted rows go."""
        with self.transaction():
            self._db.execute("DELETE FROM ledger WHERE cell = ? AND applied_hash IS NULL", (cell,))
            self._db.execute(
                "UPDATE ledger SET good_rev = applied_rev, good_hash = applied_hash,"
                " good_spec = applied_spec, updated_at = ? WHERE cell = ?",
                (now, cell),
            )
            self._db.execute("UPDATE cells SET good_cell = applied_cell WHERE cell = ?", (cell,))

    def restore_good(self, cell: str, now: float) -> None:
        """After a rollback: what is applied is the last good state again."""
        with self.transaction():
            self._db.execute("DELETE FROM ledger WHERE cell = ? AND good_hash IS NULL", (cell,))
            self._db.execute(
                "UPDATE ledger SET applied_rev = good_rev, applied_hash = good_hash,"
                " applied_spec = good_spec, updated_at = ? WHERE cell = ?",
                (now, cell),
            )
            self._db.execute(
                "UPDATE cells SET applied_cell = COALESCE(good_cell, applied_cell) WHERE cell = ?",
                (cell,),
            )

    def forget_cell(self, cell: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM ledger WHERE cell = ?", (cell,))
            self._db.execute("DELETE FROM cells WHERE cell = ?", (cell,))

    # -- cells ----------------------------------------------------------------------------
    def cell_record(self, cell: str) -> tuple[str | None, int]:
        """(hash of the desired state last handed to the cell, last repair seen)."""
        rows = self._all("SELECT applied_doc, repair_seq FROM cells WHERE cell = ?", cell)
        return (rows[0]["applied_doc"], int(rows[0]["repair_seq"])) if rows else (None, 0)

    def set_cell_record(self, cell: str, applied_doc: str | None, repair_seq: int) -> None:
        self._run(
            "INSERT INTO cells (cell, applied_doc, repair_seq) VALUES (?, ?, ?)"
            " ON CONFLICT (cell) DO UPDATE SET"
            " applied_doc = excluded.applied_doc, repair_seq = excluded.repair_seq",
            cell,
            applied_doc,
            repair_seq,
        )

    def cell_states(self, cell: str) -> tuple[str | None, str | None]:
        """(the cell as last applied, as last good), each as `render.stored.cell_json`."""
        rows = self._all("SELECT applied_cell, good_cell FROM cells WHERE cell = ?", cell)
        return (rows[0]["applied_cell"], rows[0]["good_cell"]) if rows else (None, None)

    def set_applied_cell(self, cell: str, body: str) -> None:
        self._run(
            "INSERT INTO cells (cell, applied_cell) VALUES (?, ?)"
            " ON CONFLICT (cell) DO UPDATE SET applied_cell = excluded.applied_cell",
            cell,
            body,
        )


def _ledger(row: sqlite3.Row) -> LedgerRow:
    return LedgerRow(
        row["cell"],
        row["service"],
        row["applied_rev"],
        row["applied_hash"],
        row["healthy_rev"],
        row["good_rev"],
        row["good_hash"],
        tuple(json.loads(row["depends_on"])),
        row["updated_at"],
        row["applied_spec"],
        row["good_spec"],
    )
