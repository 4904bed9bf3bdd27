"""The rollouts and their cells' steps, on the SQLite store (a part of `SqliteStore`).

A rollout's row is changed only through `update_rollout`, whose guards make an operator's
command and a step in flight exclusive: `if_advancing` (running and not paused) for the
controller's steps, `if_state` for commands such as abort, which must never overwrite a
rollout that already ended.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import Any

from cellops.store.planrecord import PlanRecord
from cellops.store.records import CellStep, Phase, Rollout, RolloutState
from cellops.store.tables import Tables

_FIELDS = frozenset(
    {"state", "wave", "phase", "phase_started", "elapsed", "baked", "failures", "paused", "reason"}
)


class RolloutTables(Tables):
    def create_rollout(self, revision: str, base: str | None, plan: PlanRecord, now: float) -> int:
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO rollouts (revision, base, state, plan, phase_started, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (revision, base, RolloutState.RUNNING, plan.to_json(), now, now, now),
            )
            rollout = int(cursor.lastrowid or 0)
            for index, wave in enumerate(plan.waves):
                for cell in wave.cell_names:
                    self._db.execute(
                        "INSERT INTO rollout_cells VALUES (?, ?, ?, ?, '', ?)",
                        (rollout, index, cell, CellStep.PENDING, now),
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
        self,
        rollout_id: int,
        now: float,
        *,
        if_advancing: bool = False,
        if_state: RolloutState | None = None,
        **fields: Any,
    ) -> bool:
        """Change a rollout; with `if_advancing`, only while it runs and is not paused (an
        operator's pause or abort from another process wins over a step in flight); with
        `if_state`, only while it is in that state. True if the row changed."""
        assert set(fields) <= _FIELDS, set(fields) - _FIELDS
        assignments = ", ".join(f"{k} = ?" for k in fields)
        args = [str(v) if isinstance(v, RolloutState | Phase) else v for v in fields.values()]
        args += [now, rollout_id]
        guard = " AND state = 'running' AND paused = 0" if if_advancing else ""
        if if_state is not None:
            guard += " AND state = ?"
            args.append(str(if_state))
        sql = f"UPDATE rollouts SET {assignments}, updated_at = ? WHERE id = ?{guard}"
        with self.transaction():
            cursor = self._db.execute(sql, args)
            ended = fields.get("state", RolloutState.RUNNING) != RolloutState.RUNNING
            if ended and cursor.rowcount > 0:  # its own settings (approvals) end with it
                self._db.execute(
                    "DELETE FROM settings WHERE key LIKE ?", (f"rollout.{rollout_id}.%",)
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

    def close_steps(self, rollout_id: int, now: float, *, superseded: bool = False) -> None:
        """A rollout ended: cells it never gave the revision are `skipped`; when a newer
        rollout takes over, cells it gave the revision unproven are `handed-over`."""
        with self.transaction():
            self._db.execute(
                "UPDATE rollout_cells SET step = ?, updated_at = ? WHERE rollout = ? AND step = ?",
                (CellStep.SKIPPED, now, rollout_id, CellStep.PENDING),
            )
            if superseded:
                self._db.execute(
                    "UPDATE rollout_cells SET step = ?, updated_at = ?"
                    " WHERE rollout = ? AND step IN (?, ?)",
                    (CellStep.HANDED_OVER, now, rollout_id, CellStep.APPLIED, CellStep.HEALTHY),
                )


@lru_cache(maxsize=16)
def _plan(text: str) -> PlanRecord:
    """A rollout's plan never changes once stored: parsed once (a 1,000-cell plan is
    megabytes of JSON, and the controller and the API read the latest rollout often)."""
    return PlanRecord.from_json(text)


def _rollout(row: sqlite3.Row) -> Rollout:
    return Rollout(
        id=row["id"],
        revision=row["revision"],
        base=row["base"],
        state=RolloutState(row["state"]),
        plan=_plan(row["plan"]),
        wave=row["wave"],
        phase=Phase(row["phase"]),
        phase_started=row["phase_started"],
        elapsed=row["elapsed"],
        baked=row["baked"],
        failures=row["failures"],
        paused=bool(row["paused"]),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
