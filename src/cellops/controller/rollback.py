"""Rollback: a failed cell given back its last good state, and the moment it is healthy
there again noticed. A part of the rollout step machine (`rollout.py`), with the same
rules: state in the store, every side effect recorded right after it succeeds.

A cell with no known good state is never "rolled back" to nothing: it is left as it is
(`kept`) and the rollout halts, whatever the failure budget. An empty cell is an outage;
a cell on a bad revision is a known, contained problem. A cell that took over objects
that were there before (a Kubernetes app moved from another tool) does have a state to go
back to: it is handed back, every object it adopted restored as it was found and what
cellops created removed; a rollback to a good state that predates some of its takeover
restores those objects as found too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from cellops.backends.base import CellBackend
from cellops.controller.gate import NO_GOOD_STATE
from cellops.controller.states import CellStates
from cellops.model.errors import BackendError, CellopsError
from cellops.render import DesiredCell, DesiredService
from cellops.store.base import Store
from cellops.store.records import CellStep, Rollout

ROLLBACK_PENDING = "rollback pending"  # tried, the backend did not answer; tried again
HANDED_BACK = "handed back as it was before the takeover"


@runtime_checkable
class TakesOver(Protocol):
    """A backend whose cells may adopt objects that were there before (Kubernetes)."""

    def roll_back(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str: ...
    def took_over(self, cell: str) -> bool: ...
    def hand_back(self, cell: str) -> str: ...


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
            if self._hand_back(cell, now, rollout):
                return
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
        backend = self.backend_for(target)
        try:
            if isinstance(backend, TakesOver):
                document = backend.roll_back(target, target.services)
            else:
                document = backend.apply(target, target.services)
        except (CellopsError, OSError) as exc:
            self._refused(cell, exc, now, rollout)
            return
        with self.store.transaction():
            self.store.restore_good(cell, now)
            _, seen = self.store.cell_record(cell)
            self.store.set_cell_record(cell, document, seen)
            _rolled_back(self.store, rollout, cell, now, "rolled back to its last good revision")

    def _hand_back(self, cell: str, now: float, rollout: Rollout) -> bool:
        """A takeover that failed before it was ever good: the cell goes back to what was
        there before, and holds nothing of cellops' (the next rollout takes it over again).
        False when the cell took nothing over."""
        described = self.states.applied(cell) or self._rolled_out(cell, rollout)
        backend = None if described is None else self.backend_for(described)
        if not isinstance(backend, TakesOver) or not backend.took_over(cell):
            return False
        try:
            done = backend.hand_back(cell)
        except (CellopsError, OSError) as exc:
            self._refused(cell, exc, now, rollout)
            return True
        with self.store.transaction():
            self.store.forget_cell(cell)
            _rolled_back(self.store, rollout, cell, now, HANDED_BACK, detail=f": {done}")
        return True

    def _rolled_out(self, cell: str, rollout: Rollout) -> DesiredCell | None:
        """The cell as the rollout's revision describes it (its apply may have failed
        before anything was recorded)."""
        try:
            return self.states.desired(rollout.revision).cells.get(cell)
        except CellopsError:
            return None

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


def _rolled_back(
    store: Store, rollout: Rollout, cell: str, now: float, how: str, *, detail: str = ""
) -> None:
    message = f"{cell} {how}{detail}"
    mark(
        store,
        rollout,
        cell,
        CellStep.ROLLED_BACK,
        kind="rolled-back",
        message=message,
        now=now,
        reason=how,
    )
