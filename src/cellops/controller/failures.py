"""Failures in a rollout: record one, roll the failed cells back (or keep them), halt
beyond the budget, and keep judging the cells a stopped rollout left on its revision.
A part of the rollout step machine (`rollout.py`), with the same rules."""

from __future__ import annotations

from collections.abc import Callable

from cellops.controller.gate import halt_reason
from cellops.controller.rollback import Rollbacks, mark
from cellops.render import DesiredFleet
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, Rollout, RolloutState

STOPPED = (RolloutState.HALTED, RolloutState.ABORTED)


class Failures:
    store: Store
    rollbacks: Rollbacks
    desired: Callable[[str], DesiredFleet]

    def _fail(
        self, rollout: Rollout, cell: str, reason: str, now: float, policy: PolicyRecord
    ) -> bool:
        """Record the failure, roll the cell back; True when the rollout stops."""
        with self.store.transaction():
            self.store.set_cell_step(rollout.id, cell, CellStep.FAILED, reason, now)
            self.store.add_event(
                now,
                "cell-failed",
                f"{cell}: {reason}",
                cell=cell,
                revision=rollout.revision,
                rollout=rollout.id,
            )
        return self._settle(rollout.id, now, policy)

    def _keep_failed(
        self, rollout: Rollout, cell: str, reason: str, now: float, policy: PolicyRecord
    ) -> bool:
        """A failure nothing can undo (a teardown refused): the cell is `kept` as it is,
        counts as failed, and the rollout halts beyond its budget. True when it stops."""
        with self.store.transaction():
            mark(
                self.store,
                rollout,
                cell,
                CellStep.KEPT,
                kind="cell-failed",
                message=f"{cell}: {reason}",
                now=now,
                reason=reason,
            )
        return self._settle(rollout.id, now, policy)

    def _settle(self, rollout_id: int, now: float, policy: PolicyRecord) -> bool:
        """Finish handling recorded failures: roll failed cells back (or keep them, with
        `onFailure: halt`), halt beyond the budget. True when the rollout is stopped.

        Separate from recording the failure so that a controller killed in between does
        the rest when it resumes: a failed cell is never left on the bad revision.
        """
        rollout = self.store.rollout(rollout_id)
        assert rollout is not None
        for cell, (_, step, _) in self.store.cell_steps(rollout.id).items():
            if step is not CellStep.FAILED:
                continue
            if policy.on_failure == "rollback":
                self.rollbacks.rollback(cell, now, rollout)
            else:
                with self.store.transaction():
                    mark(
                        self.store,
                        rollout,
                        cell,
                        CellStep.KEPT,
                        kind="cell-kept",
                        message=f"{cell} left as it is (onFailure: halt)",
                        now=now,
                        reason="left as it is (onFailure: halt)",
                    )
        if rollout.state is not RolloutState.RUNNING:
            return rollout.state in STOPPED
        reason = halt_reason(rollout, self.store.cell_steps(rollout.id), policy)
        if not reason:
            return False
        self._halt(rollout, reason, now)
        return True

    def _halt(self, rollout: Rollout, reason: str, now: float) -> None:
        with self.store.transaction():
            if self.store.update_rollout(
                rollout.id,
                now,
                if_state=RolloutState.RUNNING,
                state=RolloutState.HALTED,
                reason=reason,
            ):
                self.store.close_steps(rollout.id, now)
                self.store.add_event(
                    now,
                    "rollout-halted",
                    f"halted ({reason}): no further cell gets {rollout.revision[:12]}",
                    revision=rollout.revision,
                    rollout=rollout.id,
                )
