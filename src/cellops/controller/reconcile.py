"""The reconcile pipeline, one pass at a time: read the fleet repo, accept or reject a new
revision, start (or supersede) its rollout, step the rollout, and keep every cell as the
ledger says (supervise agents, repair drift). Every outcome is written to the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cellops.backends.base import CellBackend
from cellops.controller.gate import RolloutPolicyView
from cellops.controller.rollback import ROLLBACK_FAILED
from cellops.controller.rollout import RolloutRunner
from cellops.diff.changeset import Applied
from cellops.model.errors import CellopsError, RevisionRejected, SourceError
from cellops.pipeline import Compiler
from cellops.plan import Plan
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.store.base import Store
from cellops.store.records import CellStep, RevisionRecord, RolloutState

LAST_SEEN = "source.last_seen"
CURRENT = "fleet.current"  # the last accepted revision


@dataclass(frozen=True)
class Unproven:
    """A ledger entry that matches no desired hash: see `Reconciler._plan_ledger`."""

    hash: str
    depends_on: tuple[str, ...]


@dataclass
class Settings:
    rev: str = "HEAD"  # what to follow: a branch, or HEAD
    poll_interval: float = 5.0
    drift_interval: float = 1.0
    resync: float = 15.0  # between looks at an idle Kubernetes cell (API requests each)


class Reconciler:
    def __init__(
        self,
        compiler: Compiler,
        store: Store,
        backend_for: Callable[[DesiredCell], CellBackend],
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.compiler = compiler
        self.store = store
        self.backend_for = backend_for
        self.settings = settings
        self.clock = clock
        self.rollouts = RolloutRunner(store, backend_for, compiler.desired, self._policy)
        self._next_drift = 0.0
        self._next_look: dict[str, float] = {}  # cell -> when keep_cells looks at it again
        self._keep_errors: dict[str, str] = {}  # cell -> the error last recorded for it

    # -- the pass -------------------------------------------------------------------------
    def reconcile(self, check_source: bool) -> None:
        now = self.clock()
        if check_source:
            self.check_source(now)
        active = self.store.rollouts(limit=1)
        try:
            if active:
                self.rollouts.step(active[0], self.clock())
        finally:  # a failing step must not stop the supervision of every cell
            if now >= self._next_drift:
                self._next_drift = now + self.settings.drift_interval
                self.keep_cells(self.clock())

    def check_source(self, now: float) -> None:
        try:
            self.compiler.source.refresh()
            head = self.compiler.source.resolve(self.settings.rev)
        except SourceError as exc:
            self.store.add_event(now, "source-error", str(exc))
            return
        if self.store.setting(LAST_SEEN) == head:
            return
        self.consider(head, now)  # notes `head` as seen in the transaction that judges it

    def consider(self, head: str, now: float) -> None:
        """A new commit: reject it, or accept it and plan its rollout."""
        current = self.store.setting(CURRENT)
        try:
            previous = self.compiler.revision(current) if current else None
            revision = self.compiler.revision(head, previous=previous)
        except RevisionRejected as rejected:
            problems = [p.as_dict() for p in rejected.problems]
            with self.store.transaction():
                self.store.set_setting(LAST_SEEN, head)
                self.store.record_revision(RevisionRecord(head, False, "", problems, now))
                self.store.add_event(
                    now,
                    "revision-rejected",
                    f"{head[:12]} rejected with {len(problems)} problem(s);"
                    f" the fleet stays on {(current or 'nothing')[:12]}",
                    revision=head,
                )
            return
        running = self.store.active_rollout()
        if running is not None:  # roll its failed cells back before planning past it
            self.rollouts.settle(running, now)
        result = self.compiler.plan_against(
            revision, self.compiler.desired(head), self._plan_ledger(), previous
        )
        with self.store.transaction():
            self.store.set_setting(LAST_SEEN, head)
            self.store.record_revision(RevisionRecord(head, True, revision.message, [], now))
            self.store.set_setting(CURRENT, head)
            running = self.store.active_rollout()
            if running is not None:
                self.store.update_rollout(
                    running.id,
                    now,
                    state=RolloutState.SUPERSEDED,
                    reason=f"superseded by {head[:12]}",
                )
                self.store.add_event(
                    now,
                    "rollout-superseded",
                    f"{running.revision[:12]} superseded by {head[:12]}",
                    revision=running.revision,
                    rollout=running.id,
                )
            if not result.plan.waves:
                self.store.add_event(
                    now,
                    "revision-accepted",
                    f"{head[:12]} accepted: no cell changes",
                    revision=head,
                )
                return
            rollout = self.store.create_rollout(head, current, plan_document(result.plan), now)
            self.store.add_event(
                now,
                "rollout-started",
                f"{head[:12]}: {len(result.plan.waves)} wave(s), {len(result.plan.cells)} cell(s)",
                revision=head,
                rollout=rollout,
            )

    # -- keeping cells as the ledger says ---------------------------------------------------
    def keep_cells(self, now: float) -> None:
        """Restart dead agents; re-apply a cell whose desired state was changed by hand;
        record what the agents repaired themselves (killed replicas)."""
        current = self.store.setting(CURRENT)
        if current is None:
            return
        fleet = self.compiler.desired(current)
        by_cell: dict[str, dict[str, DesiredService]] = {}
        for row in self.store.ledger_rows():
            if row.applied_rev is not None:
                service = self.compiler.desired(row.applied_rev).cells.get(row.cell)
                if service is not None and row.service in service.services:
                    by_cell.setdefault(row.cell, {})[row.service] = service.services[row.service]
        latest = self.store.rollouts(limit=1)
        steps = self.store.cell_steps(latest[0].id) if latest else {}
        for cell, services in by_cell.items():
            target = fleet.cells.get(cell)
            if target is None or now < self._next_look.get(cell, 0.0):
                continue
            _, step, reason = steps.get(cell, (0, None, ""))
            if step is CellStep.FAILED and not reason.startswith(ROLLBACK_FAILED):
                continue  # the rollout owns it until its rollback is done (or given up)
            try:
                backend = self.backend_for(target)
                self._next_look[cell] = now + backend.resync
                self._keep(target, services, now)
                self._keep_errors.pop(cell, None)
            except (CellopsError, OSError) as exc:
                message = f"{cell}: cannot keep it as applied: {exc}"
                if self._keep_errors.get(cell) != message:  # once per distinct error
                    self._keep_errors[cell] = message
                    self.store.add_event(now, "cell-error", message, cell=cell)

    def _keep(self, cell: DesiredCell, services: dict[str, DesiredService], now: float) -> None:
        backend = self.backend_for(cell)
        document, seen_seq = self.store.cell_record(cell.name)
        seen = backend.observe(cell.name)
        if document is not None and seen.desired != document:
            restored = backend.apply(cell, services)
            what = "; ".join(seen.drifted) or "desired state"
            with self.store.transaction():
                self.store.set_cell_record(cell.name, restored, seen_seq)
                self.store.add_event(
                    now,
                    "drift",
                    f"{cell.name}: {what} changed outside cellops; restored",
                    cell=cell.name,
                )
        if not seen.reachable:
            if backend.ensure(cell):
                self.store.add_event(
                    now,
                    "agent-restarted",
                    f"{cell.name}: {seen.reason}; started a new agent",
                    cell=cell.name,
                )
            return
        if seen.repair_seq > seen_seq:
            fresh = seen.repairs[-(seen.repair_seq - seen_seq) :]
            with self.store.transaction():
                for repair in fresh:
                    self.store.add_event(
                        now,
                        "drift",
                        f"{cell.name}/{repair.service}: {repair.what}",
                        cell=cell.name,
                        service=repair.service,
                    )
                self.store.set_cell_record(cell.name, document, seen.repair_seq)

    def _plan_ledger(self) -> dict[str, dict[str, Applied]]:
        """The ledger a new plan is made against. A service applied but not yet proven
        good (a superseded rollout left it mid-wave) counts as changed whatever the new
        revision says, so the new plan takes the cell through the health gate again."""
        ledger: dict[str, dict[str, Applied]] = {}
        for row in self.store.ledger_rows():
            if row.applied_hash is None:
                continue
            proven = row.applied_hash == row.good_hash
            entry: Applied = row if proven else Unproven(f"unproven:{row.hash}", row.depends_on)
            ledger.setdefault(row.cell, {})[row.service] = entry
        return ledger

    def _policy(self, rev: str) -> RolloutPolicyView:
        policy = self.compiler.revision(rev).fleet.spec.rollout
        return RolloutPolicyView(policy.progress_deadline, policy.failure_budget, policy.on_failure)

    def desired_now(self) -> DesiredFleet | None:
        current = self.store.setting(CURRENT)
        return self.compiler.desired(current) if current else None


def plan_document(plan: Plan) -> list[dict[str, object]]:
    """A plan as the store keeps it with its rollout."""
    return [
        {
            "name": wave.name,
            "batch": wave.batch,
            "batches": wave.batches,
            "canary": wave.canary,
            "bakeSeconds": wave.bake,
            "cells": [
                {
                    "cell": c.cell,
                    "changes": [
                        {"service": ch.service, "action": str(ch.action)} for ch in c.changes
                    ],
                }
                for c in wave.cells
            ],
        }
        for wave in plan.waves
    ]
