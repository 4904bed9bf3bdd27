"""Rollback: a failed cell given back its last good state, and the moment it is healthy
there again noticed. A part of the rollout step machine (`rollout.py`), with the same
rules: state in the store, every side effect recorded right after it succeeds.
"""

from __future__ import annotations

from collections.abc import Callable

from cellops.backends.base import CellBackend
from cellops.model.errors import BackendError, CellopsError
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.store.base import Store
from cellops.store.records import CellStep, Rollout

ROLLBACK_FAILED = "rollback failed"
ROLLBACK_PENDING = "rollback pending"  # tried, the backend did not answer; tried again


def mark(
    store: Store,
    rollout: Rollout,
    cell: str,
    step: CellStep,
    *,
    kind: str,
    message: str,
    now: float,
    reason: str = "",
) -> None:
    """A cell's step in the rollout, and the event that says so (inside the caller's
    transaction, so both or neither are kept)."""
    store.set_cell_step(rollout.id, cell, step, reason, now)
    store.add_event(now, kind, message, cell=cell, revision=rollout.revision, rollout=rollout.id)


class Rollbacks:
    def __init__(
        self,
        store: Store,
        backend_for: Callable[[DesiredCell], CellBackend],
        desired: Callable[[str], DesiredFleet],
    ) -> None:
        self.store = store
        self.backend_for = backend_for
        self.desired = desired

    def rollback(self, cell: DesiredCell, now: float, rollout: Rollout) -> None:
        """Give `cell` back its last good state (services new in this rollout go away), as
        the good revision described the cell (its cluster, namespace, capacity)."""
        services: dict[str, DesiredService] = {}
        target = cell
        for row in self.store.ledger_rows(cell.name):
            if row.good_rev is not None:
                good = self.desired(row.good_rev).cells.get(cell.name)
                if good is not None and row.service in good.services:
                    services[row.service] = good.services[row.service]
                    target = good
        try:
            document = self.backend_for(target).apply(target, services)
        except (CellopsError, OSError) as exc:
            # transient (the cell's API server did not answer): the next pass tries again;
            # otherwise the cell stays failed and is not retried on every pass
            again = isinstance(exc, BackendError) and exc.transient
            kind, prefix = (
                ("rollback-retry", ROLLBACK_PENDING)
                if again
                else ("rollback-failed", ROLLBACK_FAILED)
            )
            step = self.store.cell_steps(rollout.id).get(cell.name)
            if step is None or not step[2].startswith(prefix):  # recorded once
                with self.store.transaction():
                    mark(
                        self.store,
                        rollout,
                        cell.name,
                        CellStep.FAILED,
                        kind=kind,
                        message=f"{cell.name}: {exc}" + ("; trying again" if again else ""),
                        now=now,
                        reason=f"{prefix}: {exc}",
                    )
            return
        with self.store.transaction():
            self.store.restore_good(cell.name, now)
            _, seen = self.store.cell_record(cell.name)
            self.store.set_cell_record(cell.name, document, seen)
            mark(
                self.store,
                rollout,
                cell.name,
                CellStep.ROLLED_BACK,
                kind="rolled-back",
                message=f"{cell.name} rolled back to its last good revision",
                now=now,
                reason="rolled back to its last good revision",
            )

    def watch_recovery(self, rollout: Rollout, now: float) -> None:
        """After a halt: note when each rolled-back cell is healthy on its good state."""
        for cell, (_, step, reason) in self.store.cell_steps(rollout.id).items():
            if step is not CellStep.ROLLED_BACK or reason.startswith("recovered"):
                continue
            rows = {r.service: r for r in self.store.ledger_rows(cell)}
            fleet_cell = self.desired(rollout.revision).cells.get(cell)
            if fleet_cell is None:
                continue
            seen = self.backend_for(fleet_cell).observe(cell)
            if seen.reachable and all(seen.healthy_at(s, r.hash) for s, r in rows.items()):
                with self.store.transaction():
                    mark(
                        self.store,
                        rollout,
                        cell,
                        CellStep.ROLLED_BACK,
                        kind="recovered",
                        message=f"{cell} healthy on its last good revision again",
                        now=now,
                        reason="recovered: healthy on its last good revision",
                    )
