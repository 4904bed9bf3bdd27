"""The store on SQLite, in WAL mode with synchronous=FULL: one file beside the fleet state.

Every method that changes state commits before it returns, or, inside `transaction()`,
with the other changes of that block: the rollout's crash safety rests on this.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellops import failpoint
from cellops.store.briefs import BriefTables
from cellops.store.database import open_database
from cellops.store.eventquery import EventQueries
from cellops.store.ledger import LedgerTables
from cellops.store.records import (
    Event,
    InventoryItem,
    RevisionRecord,
)
from cellops.store.rollouts import RolloutTables
from cellops.store.sessions import SessionTables
from cellops.store.tokens import TokenTables


class SqliteStore(
    LedgerTables, RolloutTables, TokenTables, SessionTables, EventQueries, BriefTables
):
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        """Open (or create) the store at `path`: see `open_database` for its durability,
        access rights, migrations and the `StoreError` it raises."""
        self._db = open_database(path, timeout)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group changes: all of them are kept, or none."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
                if self._depth == 1:
                    self._db.execute("COMMIT")
                    failpoint.hit("store.commit")
            except BaseException:
                if self._depth == 1 and self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # keep the original error
                        self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, args)

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- revisions ------------------------------------------------------------------------
    def record_revision(self, record: RevisionRecord) -> None:
        self._run(
            "INSERT OR IGNORE INTO revisions (id, accepted, message, problems, seen_at,"
            " committed_at) VALUES (?, ?, ?, ?, ?, ?)",
            record.id,
            int(record.accepted),
            record.message,
            json.dumps(record.problems),
            record.seen_at,
            record.committed_at,
        )

    def revision(self, rev: str) -> RevisionRecord | None:
        rows = self._all("SELECT * FROM revisions WHERE id = ?", rev)
        return _revision(rows[0]) if rows else None

    def revisions(self, limit: int = 50) -> list[RevisionRecord]:
        rows = self._all("SELECT * FROM revisions ORDER BY seen_at DESC, rowid DESC LIMIT ?", limit)
        return [_revision(r) for r in rows]

    # -- the inventory of Kubernetes cells ---------------------------------------------------
    def inventory(self, cell: str) -> list[InventoryItem]:
        rows = self._all(
            "SELECT key, rank, hash, body, cluster, origin, found FROM inventory"
            " WHERE cell = ? ORDER BY rank, key",
            cell,
        )
        return [
            InventoryItem(
                r["key"],
                int(r["rank"]),
                r["hash"],
                r["body"],
                r["cluster"],
                r["origin"],
                r["found"],
            )
            for r in rows
        ]

    def holds_objects(self, cell: str) -> bool:
        """Whether a cell has an inventory: it is (or was) a Kubernetes cell."""
        return bool(self._all("SELECT 1 FROM inventory WHERE cell = ? LIMIT 1", cell))

    def track(self, cell: str, item: InventoryItem) -> None:
        self._run(
            "INSERT INTO inventory (cell, key, rank, hash, body, cluster, origin, found)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cell, key, cluster) DO UPDATE SET"
            " rank = excluded.rank, hash = excluded.hash, body = excluded.body,"
            " origin = excluded.origin, found = excluded.found",
            cell,
            item.key,
            item.rank,
            item.hash,
            item.body,
            item.cluster,
            item.origin,
            item.found,
        )

    def untrack(self, cell: str, key: str, cluster: str) -> None:
        self._run(
            "DELETE FROM inventory WHERE cell = ? AND key = ? AND cluster = ?", cell, key, cluster
        )

    # -- events ---------------------------------------------------------------------------
    def add_event(
        self,
        at: float,
        kind: str,
        message: str,
        *,
        cell: str | None = None,
        service: str | None = None,
        revision: str | None = None,
        rollout: int | None = None,
    ) -> None:
        self._run(
            "INSERT INTO events (at, kind, message, cell, service, revision, rollout)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            at,
            kind,
            message,
            cell,
            service,
            revision,
            rollout,
        )

    def events(self, limit: int = 100, kind: str | None = None, after: int = 0) -> list[Event]:
        """Oldest first. With `after`: the next `limit` events after that id (for a
        follower); without: the latest `limit` events."""
        where = "WHERE id > ?" + (" AND kind = ?" if kind else "")
        args: list[Any] = [after, *([kind] if kind else [])]
        order = "ASC" if after else "DESC"
        rows = self._all(f"SELECT * FROM events {where} ORDER BY id {order} LIMIT ?", *args, limit)
        events = [Event(**dict(r)) for r in rows]
        return events if after else events[::-1]

    # -- settings -------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        rows = self._all("SELECT value FROM settings WHERE key = ?", key)
        return str(rows[0]["value"]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " value = excluded.value",
            key,
            value,
        )

    def delete_setting(self, key: str) -> None:
        self._run("DELETE FROM settings WHERE key = ?", key)


def _revision(row: sqlite3.Row) -> RevisionRecord:
    return RevisionRecord(
        row["id"],
        bool(row["accepted"]),
        row["message"],
        json.loads(row["problems"]),
        row["seen_at"],
        row["committed_at"],
    )
