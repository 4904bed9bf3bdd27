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

from cellops.backends.base import CellBackend, CellObservation
from cellops.controller.failures import STOPPED, Failures
from cellops.controller.gate import failure, failure_summary, healthy
from cellops.controller.rollback import Rollbacks, mark
from cellops.controller.states import CellStates
from cellops.model.errors import BackendError, CellopsError, SourceError
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, Phase, Rollout, RolloutState

REACHED = (CellStep.GOOD, CellStep.REMOVED)
MAX_GAP = 5.0  # seconds between two looks counted at most: longer, the controller was away


class RolloutRunner(Failures):
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
        if self.image_gate is not None and self.image_gate(rollout.revision, cells) is not None:
            return  # not applied, tried again next pass (the gate records why)
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

    # -- watching a wave ------------------------------------------------------------------
    def _watch_wave(self, rollout: Rollout, now: float, dt: float, policy: PolicyRecord) -> None:
        fleet = self.desired(rollout.revision)
        steps = self.store.cell_steps(rollout.id)
        elapsed = rollout.elapsed + dt
        all_healthy = True
        for cell in rollout.plan[rollout.wave].cell_names:
            step = steps[cell][1]
            target = fleet.cells.get(cell)
            if target is None or step not in (CellStep.APPLIED, CellStep.HEALTHY):
                continue
            judged = self._judge(
                rollout, target, step, now=now, dt=dt, elapsed=elapsed, policy=policy
            )
            if judged is None:
                return  # halted
            all_healthy = all_healthy and judged
        if rollout.phase is Phase.PROGRESS:
            if dt > 0:
                self.store.update_rollout(rollout.id, now, if_advancing=True, elapsed=elapsed)
        elif not all_healthy:  # a bake is time watched healthy without a break
            if rollout.baked:
                self.store.update_rollout(rollout.id, now, if_advancing=True, baked=0)
        elif dt > 0:
            self.store.update_rollout(rollout.id, now, if_advancing=True, baked=rollout.baked + dt)
        self._advance(rollout, now, all_healthy)

    def _judge(
        self,
        rollout: Rollout,
        target: DesiredCell,
        step: CellStep,
        *,
        now: float,
        dt: float,
        elapsed: float,
        policy: PolicyRecord,
    ) -> bool | None:
        """Look at one cell: True healthy, False not (yet), None when its failure halted
        the rollout."""
        seen = self.backend_for(target).observe(target.name)
        restarted = self._restarted(rollout, target.name, step, seen)
        if healthy(seen, target) and not restarted:
            if step is CellStep.APPLIED:
                with self.store.transaction():
                    for name in target.services:
                        self.store.set_healthy(target.name, name, rollout.revision, now)
                    mark(
                        self.store,
                        rollout,
                        target.name,
                        CellStep.HEALTHY,
                        kind="healthy",
                        message=f"{target.name} healthy at {rollout.revision[:12]}",
                        now=now,
                        reason="",
                    )
            return True
        unhealthy_for = unanswered_for = 0.0
        if step is CellStep.HEALTHY and rollout.phase is Phase.BAKE:  # all of this bake's
            key = (rollout.id, rollout.wave, target.name)
            spent = self._unhealthy if seen.reachable else self._unanswered
            if len(spent) > 4096:
                spent.clear()
            spent[key] = spent.get(key, 0.0) + dt
            unhealthy_for = self._unhealthy.get(key, 0.0)
            unanswered_for = self._unanswered.get(key, 0.0)
        reason = failure(
            seen,
            target,
            step,
            phase=rollout.phase,
            elapsed=elapsed,
            unhealthy_for=unhealthy_for,
            unanswered_for=unanswered_for,
            policy=policy,
            restarted=restarted,
        )
        if reason:
            if self._fail(rollout, target.name, reason, now, policy):
                return None
        return False

    def _restarted(
        self, rollout: Rollout, cell: str, step: CellStep, seen: CellObservation
    ) -> tuple[str, ...]:
        """Services of a baking cell whose replicas restarted since its bake began: a
        crash or a liveness kill is evidence, even when the replica is back at once."""
        if step is not CellStep.HEALTHY or rollout.phase is not Phase.BAKE:
            return ()
        counts = {name: s.restarts for name, s in seen.services.items()}
        key = (rollout.id, rollout.wave, cell)
        if len(self._restarts) > 4096:
            self._restarts.clear()
        baseline = self._restarts.setdefault(key, {})
        for name, count in counts.items():  # a service first seen now: its baseline
            baseline.setdefault(name, count)
        return tuple(sorted(n for n, c in counts.items() if c > baseline[n]))

    def _advance(self, rollout: Rollout, now: float, all_healthy: bool = True) -> None:
        current = self.store.rollout(rollout.id)
        assert current is not None
        steps = self.store.cell_steps(rollout.id)
        cells = current.plan[current.wave].cell_names
        if not current.active or current.paused:
            return
        if any(steps[c][1] is CellStep.APPLIED for c in cells):
            return
        wave = current.plan[current.wave]
        if current.phase is Phase.PROGRESS:
            self.store.update_rollout(
                current.id, now, if_advancing=True, phase=Phase.BAKE, baked=0, elapsed=0
            )
            return
        if current.baked < wave.bake_seconds or not all_healthy:
            return  # a wave ends only on a look that finds every cell of it healthy
        with self.store.transaction():
            if not self.store.update_rollout(
                current.id,
                now,
                if_advancing=True,
                wave=current.wave + 1,
                phase=Phase.APPLY,
                phase_started=now,
                elapsed=0,
                baked=0,
            ):
                return
            for cell in cells:
                if steps[cell][1] is CellStep.HEALTHY:
                    self.store.set_good(cell, now)
                    self.store.set_cell_step(current.id, cell, CellStep.GOOD, "", now)
            self.store.add_event(
                now,
                "wave-done",
                f"wave {wave.name} done",
                revision=current.revision,
                rollout=current.id,
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
