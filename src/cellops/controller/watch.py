"""Watching a wave: each cell of it looked at, judged healthy at the rollout's revision or
failed (degraded, past the progress deadline, or on evidence during bake), and the wave
advanced once all of it is healthy and has baked. A part of the rollout step machine
(`rollout.py`), with the same rules: state in the store, every side effect recorded right
after it succeeds."""

from __future__ import annotations

from collections.abc import Callable

from cellops.backends.base import CellBackend, CellObservation
from cellops.controller.gate import failure, healthy
from cellops.controller.operator import PROMOTE, promoted
from cellops.controller.rollback import mark
from cellops.render import DesiredCell, DesiredFleet
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, Phase, Rollout

BakeKey = tuple[int, int, str]  # (rollout, wave, cell)


class Watching:
    store: Store
    desired: Callable[[str], DesiredFleet]
    backend_for: Callable[[DesiredCell], CellBackend]
    _unhealthy: dict[BakeKey, float]  # seconds of its bake a cell was seen unhealthy
    _unanswered: dict[BakeKey, float]  # ... and did not answer
    _restarts: dict[BakeKey, dict[str, int]]  # replica restarts when its bake began

    def _fail(
        self, rollout: Rollout, cell: str, reason: str, now: float, policy: PolicyRecord
    ) -> bool:
        raise NotImplementedError  # Failures._fail

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
        early = promoted(self.store, current)  # an operator ended the bake
        if (current.baked < wave.bake_seconds and not early) or not all_healthy:
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
            if early:
                self.store.delete_setting(PROMOTE)
            self.store.add_event(
                now,
                "wave-done",
                f"wave {wave.name} done" + (" (promoted: bake ended early)" if early else ""),
                revision=current.revision,
                rollout=current.id,
            )
