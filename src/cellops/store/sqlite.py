"""The store on SQLite, in WAL mode: one file beside the fleet state.

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
from cellops.diff import Ledger
from cellops.store.migrations import MIGRATIONS
from cellops.store.records import (
    CellStep,
    Event,
    InventoryItem,
    LedgerRow,
    Phase,
    RevisionRecord,
    Rollout,
    RolloutState,
)


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

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

    def _migrate(self) -> None:
        with self.transaction():
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

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
            "INSERT OR IGNORE INTO revisions VALUES (?, ?, ?, ?, ?)",
            record.id,
            int(record.accepted),
            record.message,
            json.dumps(record.problems),
            record.seen_at,
        )

    def revision(self, rev: str) -> RevisionRecord | None:
        rows = self._all("SELECT * FROM revisions WHERE id = ?", rev)
        return _revision(rows[0]) if rows else None

    def revisions(self, limit: int = 50) -> list[RevisionRecord]:
        rows = self._all("SELECT * FROM revisions ORDER BY seen_at DESC, rowid DESC LIMIT ?", limit)
        return [_revision(r) for r in rows]

    # -- ledger ---------------------------------------------------------------------------
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
    ) -> None:
        self._run(
            """INSERT INTO ledger (cell, service, applied_rev, applied_hash, depends_on, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (cell, service) DO UPDATE SET applied_rev = excluded.applied_rev,
               applied_hash = excluded.applied_hash, depends_on = excluded.depends_on,
               updated_at = excluded.updated_at""",
            cell,
            service,
            rev,
            hash_,
            json.dumps(list(depends_on)),
            now,
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
                " updated_at = ? WHERE cell = ?",
                (now, cell),
            )

    def restore_good(self, cell: str, now: float) -> None:
        """After a rollback: what is applied is the last good state again."""
        with self.transaction():
            self._db.execute("DELETE FROM ledger WHERE cell = ? AND good_hash IS NULL", (cell,))
            self._db.execute(
                "UPDATE ledger SET applied_rev = good_rev, applied_hash = good_hash,"
                " updated_at = ? WHERE cell = ?",
                (now, cell),
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
            "INSERT INTO cells VALUES (?, ?, ?) ON CONFLICT (cell) DO UPDATE SET"
            " applied_doc = excluded.applied_doc, repair_seq = excluded.repair_seq",
            cell,
            applied_doc,
            repair_seq,
        )

    # -- the inventory of Kubernetes cells ---------------------------------------------------
    def inventory(self, cell: str) -> list[InventoryItem]:
        rows = self._all(
            "SELECT key, rank, hash, body, cluster FROM inventory WHERE cell = ?"
            " ORDER BY rank, key",
            cell,
        )
        return [
            InventoryItem(r["key"], int(r["rank"]), r["hash"], r["body"], r["cluster"])
            for r in rows
        ]

    def holds_objects(self, cell: str) -> bool:
        """Whether a cell has an inventory: it is (or was) a Kubernetes cell."""
        return bool(self._all("SELECT 1 FROM inventory WHERE cell = ? LIMIT 1", cell))

    def track(self, cell: str, item: InventoryItem) -> None:
        self._run(
            "INSERT INTO inventory VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cell, key, cluster)"
            " DO UPDATE SET rank = excluded.rank, hash = excluded.hash, body = excluded.body",
            cell,
            item.key,
            item.rank,
            item.hash,
            item.body,
            item.cluster,
        )

    def untrack(self, cell: str, key: str, cluster: str) -> None:
        self._run(
            "DELETE FROM inventory WHERE cell = ? AND key = ? AND cluster = ?", cell, key, cluster
        )

    # -- rollouts -------------------------------------------------------------------------
    def create_rollout(
        self, revision: str, base: str | None, plan: list[dict[str, object]], now: float
    ) -> int:
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO rollouts (revision, base, state, plan, phase_started, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (revision, base, RolloutState.RUNNING, json.dumps(plan), now, now, now),
            )
            rollout = int(cursor.lastrowid or 0)
            for index, wave in enumerate(plan):
                for cell in wave["cells"]:  # type: ignore[attr-defined]
                    self._db.execute(
                        "INSERT INTO rollout_cells VALUES (?, ?, ?, ?, '', ?)",
                        (rollout, index, cell["cell"], CellStep.PENDING, now),
                    )
        return rollout

    def rollout(self, rollout_id: int) -> Rollout | None:
        rows = self._all("SELECT * FROM rollouts WHERE id = ?", rollout_id)
        return _rollout(rows[0]) if rows else None

    def active_rollout(self) -> Rollout | None:
        rows = self._all(
            "SELECT * FROM rollouts WHERE state = ? ORDER BY id DESC LIMIT 1", RolloutState.RUNNING
        )
        return _rollout(rows[0]) if rows else None

    def rollouts(self, limit: int = 20) -> list[Rollout]:
        return [
            _rollout(r) for r in self._all("SELECT * FROM rollouts ORDER BY id DESC LIMIT ?", limit)
        ]

    def update_rollout(
        self, rollout_id: int, now: float, *, if_advancing: bool = False, **fields: Any
    ) -> bool:
        """Change a rollout; with `if_advancing`, only while it runs and is not paused (an
        operator's pause or abort from another process wins over a step in flight).
        True if the row changed."""
        allowed = {
            "state",
            "wave",
            "phase",
            "phase_started",
            "bake_until",
            "failures",
            "paused",
            "reason",
        }
        assert set(fields) <= allowed, set(fields) - allowed
        assignments = ", ".join(f"{k} = ?" for k in fields)
        values = [str(v) if isinstance(v, RolloutState | Phase) else v for v in fields.values()]
        guard = " AND state = 'running' AND paused = 0" if if_advancing else ""
        cursor = self._run(
            f"UPDATE rollouts SET {assignments}, updated_at = ? WHERE id = ?{guard}",
            *values,
            now,
            rollout_id,
        )
        return cursor.rowcount > 0

    def cell_steps(self, rollout_id: int) -> dict[str, tuple[int, CellStep, str]]:
        rows = self._all(
            "SELECT cell, wave, step, reason FROM rollout_cells WHERE rollout = ?", rollout_id
        )
        return {r["cell"]: (int(r["wave"]), CellStep(r["step"]), r["reason"]) for r in rows}

    def set_cell_step(
        self, rollout_id: int, cell: str, step: CellStep, reason: str, now: float
    ) -> None:
        self._run(
            "UPDATE rollout_cells SET step = ?, reason = ?, updated_at = ?"
            " WHERE rollout = ? AND cell = ?",
            step,
            reason,
            now,
            rollout_id,
            cell,
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


def _revision(row: sqlite3.Row) -> RevisionRecord:
    return RevisionRecord(
        row["id"],
        bool(row["accepted"]),
        row["message"],
        json.loads(row["problems"]),
        row["seen_at"],
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
    )


def _rollout(row: sqlite3.Row) -> Rollout:
    return Rollout(
        id=row["id"],
        revision=row["revision"],
        base=row["base"],
        state=RolloutState(row["state"]),
        plan=json.loads(row["plan"]),
        wave=row["wave"],
        phase=Phase(row["phase"]),
        phase_started=row["phase_started"],
        bake_until=row["bake_until"],
        failures=row["failures"],
        paused=bool(row["paused"]),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
