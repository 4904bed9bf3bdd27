"""Cells that hold a revision nobody is watching any more.

A cell is *unproven* while what it was last given is not its last good state. The running
rollout watches the cells it gave its revision; every other unproven cell is an orphan:
left on a halted or aborted rollout's revision, handed over by a superseded rollout,
waiting (pending) in a rollout that has not reached it yet, or failed in an old rollout
whose rollback never finished. Orphans are judged on every look `keep_cells` takes:
degraded, or unhealthy for longer than the progress deadline (only time the controller
watched; never while the latest rollout is paused), and the cell is rolled back (or kept,
with `onFailure: halt`), recorded in the rollout that gave it the revision.
"""

from __future__ import annotations

from collections.abc import Callable

from cellops.backends.base import CellObservation
from cellops.controller.gate import MAX_GAP, healthy, why
from cellops.controller.rollback import Rollbacks, mark
from cellops.health import Health
from cellops.render import DesiredCell
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, LedgerRow, Rollout, RolloutState

WATCHED = (CellStep.APPLIED, CellStep.HEALTHY, CellStep.FAILED)
HOLDS = (CellStep.APPLIED, CellStep.HEALTHY, CellStep.HANDED_OVER, CellStep.FAILED)
ORIGIN_SEARCH = 50  # rollouts looked through for the one that gave a cell its revision


def unproven(rows: list[LedgerRow]) -> bool:
    return any(r.applied_hash != r.good_hash for r in rows)


class Orphans:
    def __init__(
        self,
        store: Store,
        rollbacks: Rollbacks,
        policy_of: Callable[[Rollout], PolicyRecord],
    ) -> None:
        self.store = store
        self.rollbacks = rollbacks
        self.policy_of = policy_of
        self._unhealthy: dict[str, tuple[float, float]] = {}  # cell -> (seconds, last look)
        self._done: dict[str, tuple[str | None, ...]] = {}  # cell -> ledger it was left on

    def watched(self, latest: Rollout | None) -> set[str]:
        """The cells the running rollout watches itself."""
        if latest is None or latest.state is not RolloutState.RUNNING or latest.paused:
            return set()
        steps = self.store.cell_steps(latest.id)
        return {c for c, (_, step, _) in steps.items() if step in WATCHED}

    def judge(
        self,
        latest: Rollout | None,
        target: DesiredCell,
        rows: list[LedgerRow],
        seen: CellObservation,
        *,
        now: float,
        mono: float,
    ) -> None:
        """Judge one orphan (`target`: the cell as applied) from a fresh observation."""
        cell = target.name
        signature = tuple(r.applied_hash for r in rows)
        if self._done.get(cell) == signature:
            return  # already left as it is on this very state
        origin = self._origin(cell)
        decided = origin is not None and origin[1] is CellStep.FAILED
        reason = "" if decided else self._failure(latest, target, seen, mono)
        if not decided and not reason:
            return
        self._unhealthy.pop(cell, None)
        if origin is None:
            self._done[cell] = signature
            self.store.add_event(
                now,
                "cell-error",
                f"{cell}: {reason}; no rollout to roll it back: commit a fix, or"
                " `cellops rollout retry`",
                cell=cell,
            )
            return
        self._roll_back(origin[0], cell, reason, now)
        if self.store.cell_steps(origin[0].id).get(cell, (0, None, ""))[1] is CellStep.KEPT:
            self._done[cell] = signature

    def _failure(
        self, latest: Rollout | None, target: DesiredCell, seen: CellObservation, mono: float
    ) -> str:
        cell = target.name
        if not seen.reachable or healthy(seen, target):
            self._unhealthy.pop(cell, None)
            return ""
        if any(o.health is Health.DEGRADED for o in seen.services.values()):
            return why(seen, target)
        spent, last = self._unhealthy.get(cell, (0.0, mono))
        spent += max(0.0, min(mono - last, MAX_GAP))
        self._unhealthy[cell] = (spent, mono)
        paused = latest is not None and latest.active and latest.paused
        deadline = (self.policy_of(latest) if latest else PolicyRecord()).progress_deadline
        if paused or spent <= deadline:
            return ""
        return f"not healthy for {spent:.0f}s ({deadline:.0f}s allowed): " + why(seen, target)

    def _origin(self, cell: str) -> tuple[Rollout, CellStep] | None:
        """The newest rollout that holds the cell on its revision (and its step there)."""
        for rollout in self.store.rollouts(limit=ORIGIN_SEARCH):
            step = self.store.cell_steps(rollout.id).get(cell)
            if step is not None and step[1] in HOLDS:
                return rollout, step[1]
        return None

    def _roll_back(self, origin: Rollout, cell: str, reason: str, now: float) -> None:
        policy = self.policy_of(origin)
        _, step, _ = self.store.cell_steps(origin.id)[cell]
        if step is not CellStep.FAILED:
            with self.store.transaction():
                mark(
                    self.store,
                    origin,
                    cell,
                    CellStep.FAILED,
                    kind="cell-failed",
                    message=f"{cell}: {reason} (after rollout #{origin.id} stopped watching)",
                    now=now,
                    reason=reason,
                )
        if policy.on_failure == "rollback":
            self.rollbacks.rollback(cell, now, origin)
            return
        with self.store.transaction():
            mark(
                self.store,
                origin,
                cell,
                CellStep.KEPT,
                kind="cell-kept",
                message=f"{cell} left as it is (onFailure: halt)",
                now=now,
                reason="left as it is (onFailure: halt)",
            )
