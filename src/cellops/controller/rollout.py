"""The rollout: a resumable step machine, one wave at a time (gitops-engine's SyncContext
is the model). All its state is in the store; every side effect is idempotent and is
recorded right after it succeeds, so a controller killed at any moment resumes where it
stopped: a wave whose apply was interrupted is applied again (to the same effect), no wave
is skipped, and a wave only starts once every cell of the previous one was observed
healthy at this rollout's revision and has baked.

Containment rules: the canary wave tolerates no failure whatever `failureBudget` says; a
failed cell is rolled back (or kept, with `onFailure: halt`) and counts against the budget;
once a rollout stops, the cells that hold its revision without being proven are still
judged, and rolled back when they fail.

Time is what the controller saw go by (`_tick`): never more than `MAX_GAP` between two
looks, nothing while paused or stopped. A bake therefore needs the controller to watch the
whole bake, and a paused rollout's cells do not run out of progress deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cellops.backends.base import CellBackend
from cellops.controller.carry_out import carry_out_rollbacks, hold_for_approval
from cellops.controller.exposure import ExposureGate
from cellops.controller.failures import STOPPED, Failures
from cellops.controller.gate import MAX_GAP, failure_summary
from cellops.controller.operator import needs_approval
from cellops.controller.rollback import Rollbacks, mark
from cellops.controller.states import CellStates
from cellops.controller.watch import Watching
from cellops.model.errors import BackendError, CellopsError, SourceError
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, Phase, Rollout, RolloutState

REACHED = (CellStep.GOOD, CellStep.REMOVED)


class RolloutRunner(Failures, Watching):  # Failures._fail before the stub
    def __init__(
        self,
        store: Store,
        backend_for: Callable[[DesiredCell], CellBackend],
        desired: Callable[[str], DesiredFleet],
        policy: Callable[[str], PolicyRecord],
        states: CellStates | None = None,
    ) -> None:
        self.store = store
        self.backend_for = backend_for
        self.desired = desired
        self.policy = policy
        self.states = states or CellStates(store, desired)
        self.rollbacks = Rollbacks(store, backend_for, self.states)
        self._last_look: tuple[int, float] | None = None  # (rollout, monotonic time)
        # (rollout, wave, cell) -> seconds of its bake seen unhealthy / not answering
        self._unhealthy: dict[tuple[int, int, str], float] = {}
        self._unanswered: dict[tuple[int, int, str], float] = {}
        self._restarts: dict[tuple[int, int, str], dict[str, int]] = {}  # at the bake's start
        # (revision, wave's cells) -> why its images may not run, or None (wiring sets it)
        self.image_gate: Callable[[str, frozenset[str]], str | None] | None = None
        # a wave that would raise the exposure above its maxExposure waits, or halts
        self.exposure_gate: ExposureGate | None = None

    def policy_of(self, rollout: Rollout) -> PolicyRecord:
        """The rollout's own policy; for a rollout stored without one (by an earlier
        version), its revision's, or the strictest when that commit is gone from Git."""
        if rollout.plan.policy is not None:
            return rollout.plan.policy
        try:
            return self.policy(rollout.revision)
        except CellopsError:
            return PolicyRecord()

    # -- one step -------------------------------------------------------------------------
    def step(self, rollout: Rollout, now: float, mono: float | None = None) -> None:
        """Advance `rollout` by at most one phase of its current wave. `now` is wall time
        (for records), `mono` a monotonic clock (for measuring; default `now`).

        Whatever its state, a rollout first finishes its failed cells' rollbacks (one may
        still be pending when it completed or halted). The cells a stopped rollout left
        on its revision unproven are judged by `Orphans`, with every other such cell."""
        dt = self._tick(rollout, now if mono is None else mono)
        policy = self.policy_of(rollout)
        carry_out_rollbacks(self.store, self.rollbacks.rollback, now)  # operators' requests
        stopped = self._settle(rollout.id, now, policy)
        self.rollbacks.watch_recovery(rollout, now)
        if stopped or rollout.state is not RolloutState.RUNNING or rollout.paused:
            return
        try:
            if rollout.wave >= len(rollout.plan):
                self._finish(rollout, now)
            elif rollout.phase is Phase.APPLY:
                self._apply_wave(rollout, now, dt, policy)
            else:
                self._watch_wave(rollout, now, dt, policy)
        except SourceError as exc:  # its commit is gone from Git (a force-push and gc)
            self._halt(rollout, f"its revision cannot be read any more: {exc}", now)

    def settle(self, rollout: Rollout, now: float) -> None:
        """Finish what the rollout's recorded failures require (before it is superseded)."""
        self._settle(rollout.id, now, self.policy_of(rollout))

    def _tick(self, rollout: Rollout, mono: float) -> float:
        """Seconds observed since the last step of this rollout: 0 after a restart, a
        pause or another rollout; never more than MAX_GAP."""
        counting = (rollout.active or rollout.state in STOPPED) and not rollout.paused
        last, self._last_look = self._last_look, (rollout.id, mono) if counting else None
        if not counting or last is None or last[0] != rollout.id:
            return 0.0
        return max(0.0, min(mono - last[1], MAX_GAP))

    def _apply_wave(self, rollout: Rollout, now: float, dt: float, policy: PolicyRecord) -> None:
        cells = frozenset(rollout.plan[rollout.wave].cell_names)
        if needs_approval(self.store, rollout):
            hold_for_approval(self.store, rollout, now)  # `approval: manual`
            return
        if self._over_cap(rollout, now) or (
            self.image_gate is not None and self.image_gate(rollout.revision, cells) is not None
        ):
            return  # not applied, tried again next pass (the gates record why)
        fleet = self.desired(rollout.revision)
        steps = self.store.cell_steps(rollout.id)
        elapsed = rollout.elapsed + dt
        retrying = False
        for cell in rollout.plan[rollout.wave].cell_names:
            if steps[cell][1] is not CellStep.PENDING:
                continue
            if not self._advancing(rollout.id):
                return  # paused or aborted meanwhile, by an operator in another process
            try:
                self._apply_cell(rollout, fleet, cell, now)
            except (CellopsError, OSError, LookupError) as exc:
                if self._retry_later(rollout, cell, exc, now, elapsed=elapsed, policy=policy):
                    retrying = True
                    continue
                if cell not in fleet.cells:  # a teardown that failed: the cell still runs
                    if self._keep_failed(rollout, cell, f"cannot tear down: {exc}", now, policy):
                        return
                elif self._fail(rollout, cell, f"cannot apply: {exc}", now, policy):
                    return
        if retrying:  # the wave stays in its apply phase; the next pass tries again
            self.store.update_rollout(rollout.id, now, if_advancing=True, elapsed=elapsed)
            return
        self.store.update_rollout(
            rollout.id, now, if_advancing=True, phase=Phase.PROGRESS, phase_started=now, elapsed=0
        )

    def _retry_later(
        self,
        rollout: Rollout,
        cell: str,
        exc: Exception,
        now: float,
        *,
        elapsed: float,
        policy: PolicyRecord,
    ) -> bool:
        """A transient failure (an API server that did not answer) is tried again on the
        next pass, until the wave's progress deadline; then it fails the cell."""
        if not isinstance(exc, BackendError) or not exc.transient:
            return False
        if elapsed >= policy.progress_deadline:
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

    def _over_cap(self, rollout: Rollout, now: float) -> bool:
        """The wave would raise the exposure above its `maxExposure`: it waits, or the
        rollout halts when the wave's own cells are over the cap."""
        held = self.exposure_gate(rollout, now) if self.exposure_gate is not None else None
        if held is not None and held.impossible:
            self._halt(rollout, held.message, now)
        return held is not None

    def _advancing(self, rollout_id: int) -> bool:
        current = self.store.rollout(rollout_id)
        return current is not None and current.active and not current.paused

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
                    CellStep.REMOVED,
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
        texts = {name: self.states.service_text(s) for name, s in wanted.items()}
        with self.store.transaction():
            for name, service in wanted.items():
                self.store.set_applied(
                    cell.name,
                    name,
                    rev=service.revision,
                    hash_=service.hash,
                    depends_on=service.depends_on,
                    now=now,
                    spec=texts[name],
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
            self.store.set_applied_cell(cell.name, self.states.cell_text(cell))
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

    def _finish(self, rollout: Rollout, now: float) -> None:
        steps = self.store.cell_steps(rollout.id)
        failed = {c: step for c, (_, step, _) in steps.items() if step.failed}
        reached = sum(1 for _, step, _ in steps.values() if step in REACHED)
        if failed or reached < len(steps):
            summary = failure_summary(failed)
            message = f"{rollout.revision[:12]} reached {reached} of {len(steps)} planned cells;"
            message += f" {summary}"
        else:
            summary = ""
            message = f"{rollout.revision[:12]} reached every planned cell ({reached})"
        with self.store.transaction():
            if not self.store.update_rollout(
                rollout.id,
                now,
                if_advancing=True,
                state=RolloutState.COMPLETED,
                reason=summary,
                failures=len(failed),
            ):
                return
            self.store.add_event(
                now, "rollout-completed", message, revision=rollout.revision, rollout=rollout.id
            )

    def _known_backend(self, cell: str) -> CellBackend:
        known = self.states.applied(cell)
        if known is None:
            raise LookupError(f"no revision describes cell {cell}")
        return self.backend_for(known)
