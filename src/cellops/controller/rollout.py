"""The rollout: a resumable step machine, one wave at a time (gitops-engine's SyncContext
is the model). All its state is in the store; every side effect is idempotent and is
recorded right after it succeeds, so a controller killed at any moment resumes where it
stopped: a wave whose apply was interrupted is applied again (to the same effect), no wave
is skipped, and a wave only starts once every cell of the previous one was observed
healthy at this rollout's revision and has baked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cellops.backends.base import CellBackend
from cellops.controller.gate import RolloutPolicyView, failure, healthy
from cellops.controller.rollback import ROLLBACK_FAILED, Rollbacks, mark
from cellops.model.errors import BackendError, CellopsError
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.store.base import Store
from cellops.store.records import CellStep, Phase, Rollout, RolloutState


class RolloutRunner:
    def __init__(
        self,
        store: Store,
        backend_for: Callable[[DesiredCell], CellBackend],
        desired: Callable[[str], DesiredFleet],
        policy: Callable[[str], RolloutPolicyView],
    ) -> None:
        self.store = store
        self.backend_for = backend_for
        self.desired = desired
        self.policy = policy
        self.rollbacks = Rollbacks(store, backend_for, desired)

    # -- one step -------------------------------------------------------------------------
    def step(self, rollout: Rollout, now: float) -> None:
        """Advance `rollout` by at most one phase of its current wave."""
        if rollout.state in (RolloutState.RUNNING, RolloutState.HALTED) and self._settle(
            rollout.id, now, self.policy(rollout.revision)
        ):
            self.rollbacks.watch_recovery(rollout, now)
            return
        if rollout.state is not RolloutState.RUNNING or rollout.paused:
            return
        if rollout.wave >= len(rollout.plan):
            self._finish(rollout, now)
            return
        if rollout.phase is Phase.APPLY:
            self._apply_wave(rollout, now)
        else:
            self._watch_wave(rollout, now)

    def settle(self, rollout: Rollout, now: float) -> None:
        """Finish what the rollout's recorded failures require (before it is superseded)."""
        self._settle(rollout.id, now, self.policy(rollout.revision))

    def _cells_of(self, rollout: Rollout) -> list[str]:
        cells = rollout.plan[rollout.wave]["cells"]
        assert isinstance(cells, list)
        return [str(c["cell"]) for c in cells]

    def _apply_wave(self, rollout: Rollout, now: float) -> None:
        fleet = self.desired(rollout.revision)
        steps = self.store.cell_steps(rollout.id)
        policy = self.policy(rollout.revision)
        retrying = False
        for cell in self._cells_of(rollout):
            if steps[cell][1] is not CellStep.PENDING:
                continue
            if not self._advancing(rollout.id):
                return  # paused or aborted meanwhile, by an operator in another process
            try:
                self._apply_cell(rollout, fleet, cell, now)
            except (CellopsError, OSError) as exc:
                if self._retry_later(rollout, cell, exc, now, policy):
                    retrying = True
                    continue
                target = fleet.cells.get(cell)
                if target is not None and self._fail(
                    rollout, target, f"cannot apply: {exc}", now, policy
                ):
                    return
        if retrying:
            return  # the wave stays in its apply phase; the next pass tries again
        self.store.update_rollout(
            rollout.id, now, if_advancing=True, phase=Phase.PROGRESS, phase_started=now
        )

    def _retry_later(
        self, rollout: Rollout, cell: str, exc: Exception, now: float, policy: RolloutPolicyView
    ) -> bool:
        """A transient failure (an API server that did not answer) is tried again on the
        next pass, until the wave's progress deadline; then it fails the cell."""
        if not isinstance(exc, BackendError) or not exc.transient:
            return False
        if now - rollout.phase_started >= policy.progress_deadline:
            return False
        self.store.add_event(
            now,
            "apply-retry",
            f"{cell}: {exc}; trying again",
            cell=cell,
            revision=rollout.revision,
            rollout=rollout.id,
        )
        return True

    def _advancing(self, rollout_id: int) -> bool:
        current = self.store.rollout(rollout_id)
        return current is not None and current.state is RolloutState.RUNNING and not current.paused

    def _apply_cell(self, rollout: Rollout, fleet: DesiredFleet, cell: str, now: float) -> None:
        target = fleet.cells.get(cell)
        if target is None:  # the cell left the fleet: tear it down
            self._known_backend(cell).delete(cell)
            with self.store.transaction():
                self.store.forget_cell(cell)
                mark(
                    self.store,
                    rollout,
                    cell,
                    CellStep.HEALTHY,
                    kind="cell-removed",
                    message=f"cell {cell} torn down",
                    now=now,
                    reason="removed",
                )
            return
        backend = self.backend_for(target)
        backend.ensure(target)
        document = backend.apply(target, target.services)
        self._record_applied(rollout, target, target.services, document, now)

    def _record_applied(
        self,
        rollout: Rollout,
        cell: DesiredCell,
        wanted: Mapping[str, DesiredService],
        document: str,
        now: float,
    ) -> None:
        with self.store.transaction():
            for name, service in wanted.items():
                self.store.set_applied(
                    cell.name,
                    name,
                    rev=service.revision,
                    hash_=service.hash,
                    depends_on=service.depends_on,
                    now=now,
                )
            for row in self.store.ledger_rows(cell.name):
                if row.service not in wanted:
                    self.store.set_applied(
                        cell.name,
                        row.service,
                        rev=None,
                        hash_=None,
                        depends_on=row.depends_on,
                        now=now,
                    )
            _, seen = self.store.cell_record(cell.name)
            self.store.set_cell_record(cell.name, document, seen)
            mark(
                self.store,
                rollout,
                cell.name,
                CellStep.APPLIED,
                kind="applied",
                message=f"{cell.name} given {rollout.revision[:12]}",
                now=now,
                reason="",
            )

    # -- watching a wave ------------------------------------------------------------------
    def _watch_wave(self, rollout: Rollout, now: float) -> None:
        fleet = self.desired(rollout.revision)
        policy = self.policy(rollout.revision)
        steps = self.store.cell_steps(rollout.id)
        for cell in self._cells_of(rollout):
            step = steps[cell][1]
            target = fleet.cells.get(cell)
            if target is None or step not in (CellStep.APPLIED, CellStep.HEALTHY):
                continue
            seen = self.backend_for(target).observe(cell)
            ok = healthy(seen, target)
            if ok and step is CellStep.APPLIED:
                with self.store.transaction():
                    for name in target.services:
                        self.store.set_healthy(cell, name, rollout.revision, now)
                    mark(
                        self.store,
                        rollout,
                        cell,
                        CellStep.HEALTHY,
                        kind="healthy",
                        message=f"{cell} healthy at {rollout.revision[:12]}",
                        now=now,
                        reason="",
                    )
            elif not ok:
                reason = failure(seen, target, rollout, step, now=now, policy=policy)
                if reason:
                    if self._fail(rollout, target, reason, now, policy):
                        return  # halted
        self._advance(rollout, now)

    def _advance(self, rollout: Rollout, now: float) -> None:
        current = self.store.rollout(rollout.id)
        assert current is not None
        steps = self.store.cell_steps(rollout.id)
        waiting = [c for c in self._cells_of(current) if steps[c][1] is CellStep.APPLIED]
        if waiting or current.state is not RolloutState.RUNNING:
            return
        wave = current.plan[current.wave]
        if current.phase is Phase.PROGRESS:
            bake = float(str(wave.get("bakeSeconds", 0)))
            self.store.update_rollout(
                current.id, now, if_advancing=True, phase=Phase.BAKE, bake_until=now + bake
            )
            return
        if now < current.bake_until:
            return
        with self.store.transaction():
            if not self.store.update_rollout(
                current.id,
                now,
                if_advancing=True,
                wave=current.wave + 1,
                phase=Phase.APPLY,
                phase_started=now,
            ):
                return
            for cell in self._cells_of(current):
                if steps[cell][1] is CellStep.HEALTHY:
                    self.store.set_good(cell, now)
            self.store.add_event(
                now,
                "wave-done",
                f"wave {wave['name']} done",
                revision=current.revision,
                rollout=current.id,
            )

    def _finish(self, rollout: Rollout, now: float) -> None:
        with self.store.transaction():
            if not self.store.update_rollout(
                rollout.id, now, if_advancing=True, state=RolloutState.COMPLETED
            ):
                return
            self.store.add_event(
                now,
                "rollout-completed",
                f"{rollout.revision[:12]} reached every planned cell",
                revision=rollout.revision,
                rollout=rollout.id,
            )

    # -- failure and rollback -------------------------------------------------------------
    def _fail(
        self,
        rollout: Rollout,
        cell: DesiredCell,
        reason: str,
        now: float,
        policy: RolloutPolicyView,
    ) -> bool:
        """Record the failure, roll the cell back; True when the rollout halts."""
        current = self.store.rollout(rollout.id)
        assert current is not None
        failures = current.failures + 1
        with self.store.transaction():
            self.store.set_cell_step(rollout.id, cell.name, CellStep.FAILED, reason, now)
            self.store.update_rollout(rollout.id, now, failures=failures)
            self.store.add_event(
                now,
                "cell-failed",
                f"{cell.name}: {reason}",
                cell=cell.name,
                revision=rollout.revision,
                rollout=rollout.id,
            )
        return self._settle(rollout.id, now, policy)

    def _settle(self, rollout_id: int, now: float, policy: RolloutPolicyView) -> bool:
        """Finish handling recorded failures: roll failed cells back, halt beyond the budget.

        Separate from recording the failure so that a controller killed in between does
        the rest when it resumes: a failed cell is never left on the bad revision.
        True when the rollout is halted.
        """
        rollout = self.store.rollout(rollout_id)
        assert rollout is not None
        if policy.on_failure == "rollback":
            fleet = self.desired(rollout.revision)
            for cell, (_, step, reason) in self.store.cell_steps(rollout.id).items():
                if (
                    step is CellStep.FAILED
                    and cell in fleet.cells
                    and not reason.startswith(ROLLBACK_FAILED)
                ):
                    self.rollbacks.rollback(fleet.cells[cell], now, rollout)
        if rollout.failures <= policy.failure_budget:
            return False
        if rollout.state is RolloutState.RUNNING:
            failed = [
                c
                for c, (_, step, _) in self.store.cell_steps(rollout.id).items()
                if step in (CellStep.FAILED, CellStep.ROLLED_BACK)
            ]
            reason = ", ".join(sorted(failed)) + " failed"
            with self.store.transaction():
                self.store.update_rollout(rollout.id, now, state=RolloutState.HALTED, reason=reason)
                self.store.add_event(
                    now,
                    "rollout-halted",
                    f"halted ({reason}): no further cell gets {rollout.revision[:12]}",
                    revision=rollout.revision,
                    rollout=rollout.id,
                )
        return True

    def _known_backend(self, cell: str) -> CellBackend:
        for rev in (r.applied_rev for r in self.store.ledger_rows(cell) if r.applied_rev):
            known = self.desired(rev).cells.get(cell)
            if known is not None:
                return self.backend_for(known)
        raise LookupError(f"no revision describes cell {cell}")
