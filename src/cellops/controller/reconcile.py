"""The reconcile pipeline, one pass at a time: read the fleet repo, accept or reject a new
revision, start (or supersede) its rollout, step the rollout, and keep every cell as the
ledger says (supervise agents, repair drift). Every outcome is written to the store."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cellops.backends.base import CellBackend, CellObservation
from cellops.controller.exposure import ExposureTracker, unbaked_cells
from cellops.controller.operator import RETRY
from cellops.controller.orphans import Orphans, unproven
from cellops.controller.records import plan_record, policy_record
from cellops.controller.rollout import RolloutRunner
from cellops.controller.states import CellStates
from cellops.diff.changeset import Applied
from cellops.model.errors import CellopsError, RevisionRejected, SourceError
from cellops.model.problems import Problem
from cellops.pipeline import Compiler
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.render.brief import fleet_brief
from cellops.spec.revision import Revision
from cellops.store.base import Store
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, LedgerRow, RevisionRecord, RolloutState

LAST_SEEN = "source.last_seen"
CURRENT = "fleet.current"  # the last accepted revision
CURRENT_CELLS = "fleet.current.cells"  # its cells in brief (render.brief), for the readers


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
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.compiler = compiler
        self.store = store
        self.backend_for = backend_for
        self.settings = settings
        self.clock = clock
        # a fake wall clock in tests is the monotonic one too
        self.monotonic = monotonic or (time.monotonic if clock is time.time else clock)
        self.states = CellStates(store, compiler.desired)
        self.rollouts = RolloutRunner(
            store, backend_for, compiler.desired, self._policy, self.states
        )
        self.orphans = Orphans(store, self.rollouts.rollbacks, self.rollouts.policy_of)
        self._next_drift = 0.0
        self._next_look: dict[str, float] = {}  # cell -> when keep_cells looks at it again
        self._keep_errors: dict[str, str] = {}  # cell -> the error last recorded for it
        # writes the routing table of each accepted revision, given the unbaked cells
        # new tenants keep off (router/publisher.py); `exposure` records the live share
        self.publish: Callable[[Revision, frozenset[str]], object] | None = None
        self.exposure: ExposureTracker | None = None

    # -- the pass -------------------------------------------------------------------------
    def reconcile(self, check_source: bool) -> None:
        now = self.clock()
        try:
            if check_source:
                self.check_source(now)
            self.retry_requested(now)
            active = self.store.rollouts(limit=1)
            if active:
                self.rollouts.step(active[0], self.clock(), self.monotonic())
            if self.exposure is not None:
                self.exposure.update(self.store)
        finally:  # a failing pass must not stop the supervision of every cell
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
        """A new commit: reject it, or accept it and plan its rollout. Any error while
        judging it rejects it: a commit must never wedge the controller."""
        current = self.store.setting(CURRENT)
        previous = self._readable(current)
        try:
            revision = self.compiler.revision(head, previous=previous)
        except SourceError:
            raise  # the source could not be read (not the commit's fault): next pass
        except RevisionRejected as rejected:
            self._reject(head, current, rejected.problems, now)
            return
        except Exception as exc:  # a poison commit (RecursionError, ...): rejected
            self._reject_poison(head, current, "judge", exc, now)
            return
        running = self.store.active_rollout()
        if running is not None:  # roll its failed cells back before planning past it
            self.rollouts.settle(running, now)
        try:
            self._start(head, revision, previous, current, now)
        except SourceError:
            raise
        except Exception as exc:  # planning must not wedge the loop either
            self._reject_poison(head, current, "plan", exc, now)

    def _reject_poison(
        self, head: str, current: str | None, doing: str, exc: Exception, now: float
    ) -> None:
        print(f"cannot {doing} {head}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        message = f"cellops could not {doing} this commit: {type(exc).__name__}: {exc}"
        problem = Problem(file="", line=0, field="", message=message[:500])
        self._reject(head, current, [problem], now)

    def _readable(self, rev: str | None) -> Revision | None:
        """The last accepted revision, for the rules that compare with it; None when it
        is gone from Git (a force-push and gc)."""
        if rev is None:
            return None
        try:
            return self.compiler.revision(rev)
        except CellopsError:
            return None

    def _reject(self, head: str, current: str | None, found: Sequence[Problem], now: float) -> None:
        problems = [p.as_dict() for p in found]
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

    def _start(
        self,
        head: str,
        revision: Revision,
        previous: Revision | None,
        current: str | None,
        now: float,
        *,
        retry_of: int | None = None,
    ) -> None:
        desired = self.compiler.desired(head)
        result = self.compiler.plan_against(revision, desired, self._plan_ledger(), previous)
        if self.publish is not None:
            try:
                self.publish(revision, unbaked_cells(self.store.ledger_rows()))
            except OSError as exc:  # the routers keep their last table; the next commit retries
                self.store.add_event(now, "routing-table-error", f"{head[:12]}: {exc}")
        with self.store.transaction():
            self.store.set_setting(LAST_SEEN, head)
            self.store.record_revision(
                RevisionRecord(head, True, revision.message, [], now, revision.committed_at)
            )
            self.store.set_setting(CURRENT, head)
            self.store.set_setting(CURRENT_CELLS, json.dumps(fleet_brief(desired)))
            running = self.store.active_rollout()
            if running is not None:
                self.store.update_rollout(
                    running.id,
                    now,
                    if_state=RolloutState.RUNNING,
                    state=RolloutState.SUPERSEDED,
                    reason=f"superseded by {head[:12]}",
                )
                self.store.close_steps(running.id, now, superseded=True)
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
            policy = policy_record(revision.fleet.spec.rollout)
            rollout = self.store.create_rollout(
                head, current, plan_record(result.plan, policy), now
            )
            again = f" (retry of #{retry_of})" if retry_of is not None else ""
            self.store.add_event(
                now,
                "rollout-started",
                f"{head[:12]}{again}: {len(result.plan.waves)} wave(s),"
                f" {len(result.plan.cells)} cell(s)",
                revision=head,
                rollout=rollout,
            )

    def retry_requested(self, now: float) -> None:
        """`cellops rollout retry`: plan the halted or aborted rollout's revision again,
        against what the cells hold now."""
        wanted = self.store.setting(RETRY)
        if wanted is None:
            return
        latest = self.store.rollouts(limit=1)
        current = self.store.setting(CURRENT)
        rollout = latest[0] if latest else None
        if rollout is None or str(rollout.id) != wanted or rollout.revision != current:
            self._retry_refused(wanted, "it is not the latest rollout of the current revision", now)
            return
        if rollout.state not in (RolloutState.HALTED, RolloutState.ABORTED):
            self._retry_refused(wanted, f"it is {rollout.state}", now)
            return
        try:
            revision = self.compiler.revision(rollout.revision)
        except CellopsError as exc:  # gone from Git (force-push, gc), or no longer valid
            self._retry_refused(wanted, f"its revision cannot be read: {exc}", now)
            return
        self.rollouts.settle(rollout, now)
        with self.store.transaction():
            self.store.delete_setting(RETRY)
            self._start(rollout.revision, revision, None, rollout.base, now, retry_of=rollout.id)

    def _retry_refused(self, wanted: str, why: str, now: float) -> None:
        with self.store.transaction():
            self.store.delete_setting(RETRY)
            self.store.add_event(now, "retry-refused", f"rollout #{wanted} not retried: {why}")

    # -- keeping cells as the ledger says ---------------------------------------------------
    def keep_cells(self, now: float) -> None:
        """Restart dead agents; re-apply a cell whose desired state was changed by hand;
        record what the agents repaired themselves (killed replicas). Every cell is kept
        as the store says it was given, whatever Git still holds."""
        recent = self.store.rollouts(limit=1)
        latest = recent[0] if recent else None
        steps = self.store.cell_steps(latest.id) if latest else {}
        watched = self.orphans.watched(latest)
        rows_by_cell: dict[str, list[LedgerRow]] = {}
        for row in self.store.ledger_rows():
            rows_by_cell.setdefault(row.cell, []).append(row)
        for cell, rows in rows_by_cell.items():
            if now < self._next_look.get(cell, 0.0):
                continue
            if steps.get(cell, (0, None, ""))[1] is CellStep.FAILED:
                continue  # the rollout owns it until its rollback is done (or given up)
            try:
                target = self.states.applied(cell, rows)
                if target is None:
                    continue
                backend = self.backend_for(target)
                self._next_look[cell] = now + backend.resync
                seen = self._keep(target, dict(target.services), now)
                if cell not in watched and unproven(rows):
                    self.orphans.judge(latest, target, rows, seen, now=now, mono=self.monotonic())
                self._keep_errors.pop(cell, None)
            except (CellopsError, OSError, ValueError) as exc:  # ValueError: stored JSON
                message = f"{cell}: cannot keep it as applied: {exc}"
                if self._keep_errors.get(cell) != message:  # once per distinct error
                    self._keep_errors[cell] = message
                    self.store.add_event(now, "cell-error", message, cell=cell)

    def _keep(
        self, cell: DesiredCell, services: dict[str, DesiredService], now: float
    ) -> CellObservation:
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
            return seen
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
        return seen

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

    def _policy(self, rev: str) -> PolicyRecord:
        """The policy of a rollout stored without one (by an earlier version)."""
        return policy_record(self.compiler.revision(rev).fleet.spec.rollout)

    def desired_now(self) -> DesiredFleet | None:
        current = self.store.setting(CURRENT)
        return self.compiler.desired(current) if current else None
