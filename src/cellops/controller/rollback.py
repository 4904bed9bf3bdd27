"""Rollback: a failed cell given back its last good state, and the moment it is healthy
there again noticed. A part of the rollout step machine (`rollout.py`), with the same
rules: state in the store, every side effect recorded right after it succeeds.

A cell with no known good state is never "rolled back" to nothing: it is left as it is
(`kept`) and the rollout halts, whatever the failure budget. An empty cell is an outage;
a cell on a bad revision is a known, contained problem.
"""

from __future__ import annotations

from collections.abc import Callable

from cellops.backends.base import CellBackend
from cellops.controller.gate import NO_GOOD_STATE
from cellops.controller.states import CellStates
from cellops.model.errors import BackendError, CellopsError
from cellops.render import DesiredCell
from cellops.store.base import Store
from cellops.store.records import CellStep, Rollout

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
        states: CellStates,
    ) -> None:
        self.store = store
        self.backend_for = backend_for
        self.states = states

    def rollback(self, cell: str, now: float, rollout: Rollout) -> None:
        """Give `cell` back its last good state (services new in this rollout go away), as
        the good revision described the cell (its cluster, namespace, capacity)."""
        target = self.states.good(cell)
        if target is None:
            with self.store.transaction():
                mark(
                    self.store,
                    rollout,
                    cell,
                    CellStep.KEPT,
                    kind="rollback-impossible",
                    message=f"{cell}: {NO_GOOD_STATE} to roll back to; left as it is",
                    now=now,
                    reason=f"{NO_GOOD_STATE}: left as it is",
                )
            return
        try:
            document = self.backend_for(target).apply(target, target.services)
        except (CellopsError, OSError) as exc:
            self._refused(cell, exc, now, rollout)
            return
        with self.store.transaction():
            self.store.restore_good(cell, now)
            _, seen = self.store.cell_record(cell)
            self.store.set_cell_record(cell, document, seen)
            mark(
                self.store,
                rollout,
                cell,
                CellStep.ROLLED_BACK,
                kind="rolled-back",
                message=f"{cell} rolled back to its last good revision",
                now=now,
                reason="rolled back to its last good revision",
            )

    def _refused(self, cell: str, exc: Exception, now: float, rollout: Rollout) -> None:
        """Transient (the cell's API server did not answer): the next pass tries again.
        Otherwise the cell is `rollback-failed`, for an operator, and not retried."""
        again = isinstance(exc, BackendError) and exc.transient
        if again:
            step = self.store.cell_steps(rollout.id).get(cell)
            if step is not None and step[2].startswith(ROLLBACK_PENDING):
                return  # recorded once
        with self.store.transaction():
            mark(
                self.store,
                rollout,
                cell,
                CellStep.FAILED if again else CellStep.ROLLBACK_FAILED,
                kind="rollback-retry" if again else "rollback-failed",
                message=f"{cell}: {exc}" + ("; trying again" if again else ""),
                now=now,
                reason=f"{ROLLBACK_PENDING}: {exc}" if again else f"rollback failed: {exc}",
            )

    def watch_recovery(self, rollout: Rollout, now: float) -> None:
        """Note when each rolled-back cell is healthy on its good state again."""
        for cell, (_, step, _) in self.store.cell_steps(rollout.id).items():
            if step is not CellStep.ROLLED_BACK:
                continue
            rows = self.store.ledger_rows(cell)
            target = self.states.applied(cell, rows)
            if target is None:
                continue
            seen = self.backend_for(target).observe(cell)
            if seen.reachable and all(
                seen.healthy_at(r.service, r.hash) for r in rows if r.applied_hash
            ):
                with self.store.transaction():
                    mark(
                        self.store,
                        rollout,
                        cell,
                        CellStep.RECOVERED,
                        kind="recovered",
                        message=f"{cell} healthy on its last good revision again",
                        now=now,
                        reason="healthy on its last good revision",
                    )
