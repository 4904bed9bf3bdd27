"""The rollout step machine with a scripted backend and fake time: wave gating, bake,
deadlines, rollback, budget, supersede, and a crash at every apply of a rollout.

Real store (SQLite file), real Git fleet repo, real compiler; only the cells are scripted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cellops.backends.fake import Crash, FakeBackend
from cellops.controller.reconcile import Reconciler, Settings
from cellops.health import Health
from cellops.model.errors import BackendError
from cellops.pipeline import Compiler
from cellops.render.brief import fleet_brief
from cellops.source.git import GitSource
from cellops.store.records import CellStep, RolloutState
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo

CELLS = ("canary", "eu-1", "us-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A controller over a fleet repo; `restart()` is a fresh process on the same store."""

    def __init__(self, repo: FleetRepo, db: Path, backend: FakeBackend) -> None:
        self.repo, self.db, self.backend = repo, db, backend
        self.clock = Clock()
        self.crashes = 0
        self.restart()

    def restart(self) -> None:
        self.store = SqliteStore(self.db)
        self.reconciler = Reconciler(
            Compiler(GitSource(self.repo.path)),
            self.store,
            lambda cell: self.backend,
            Settings(),
            clock=self.clock,
        )

    def run(self, until: Callable[[], bool], passes: int = 400, crash_ok: bool = False) -> None:
        for _ in range(passes):
            if until():
                return
            try:
                self.reconciler.reconcile(check_source=True)
            except Crash:
                assert crash_ok
                self.crashes += 1
                self.restart()  # the controller died; a new one resumes from the store
            self.clock.now += 0.25
        raise AssertionError("the rollout did not settle")

    def latest(self) -> RolloutState:
        rollouts = self.store.rollouts(limit=1)
        return rollouts[0].state if rollouts else RolloutState.RUNNING

    def settled(self) -> bool:
        return self.latest() in (RolloutState.COMPLETED, RolloutState.HALTED)

    def done(self, revision: str) -> Callable[[], bool]:
        """True once the rollout of `revision` has completed or halted."""

        def check() -> bool:
            rollouts = self.store.rollouts(limit=1)
            return bool(rollouts) and rollouts[0].revision == revision and self.settled()

        return check

    def applied_events(self, revision: str) -> list[tuple[str, float]]:
        return [
            (e.cell or "", e.at)
            for e in self.store.events(limit=1000, kind="applied")
            if e.revision == revision
        ]


def _bump(repo: FleetRepo, mode: str) -> str:
    text = repo.read("services/api/service.yaml")
    start = text.index("MODE: ") + len("MODE: ")
    end = text.index("\n", start)
    repo.write("services/api/service.yaml", text[:start] + mode + text[end:])
    return repo.commit(f"api {mode}")


def _break_canary(harness: Harness) -> tuple[str, str, int]:
    """Commit a version that degrades wherever it runs; (commit, its canary hash, the
    canary's applies so far)."""
    head = _bump(harness.repo, "broken")
    bad = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.DEGRADED if h == bad else Health.HEALTHY
    return head, bad, harness.backend.cells["canary"].applies


def test_waves_wait_for_health_and_bake(harness: Harness) -> None:
    ready_at: dict[str, float] = {}

    def health(cell: str, service: str, hash_: str) -> Health:
        return (
            Health.HEALTHY
            if harness.clock.now >= ready_at.setdefault(cell, harness.clock.now + 2.0)
            else Health.PROGRESSING
        )

    harness.backend.health = health
    head = _bump(harness.repo, "fast")
    harness.run(harness.done(head))
    applied = dict(harness.applied_events(head))
    assert list(applied) == ["canary", "eu-1", "us-1"]
    # the canary became healthy 2 s after its apply, then baked 1 s
    assert applied["eu-1"] - applied["canary"] >= 3.0
    assert applied["eu-1"] == applied["us-1"]  # one batch of two
    assert harness.latest() is RolloutState.COMPLETED
    for cell in CELLS:
        row = next(r for r in harness.store.ledger_rows(cell) if r.service == "api")
        assert row.applied_rev == row.good_rev == row.healthy_rev == head
    # the accepted revision's cells in brief, for `cellops status` (render.brief)
    kept = json.loads(harness.store.setting("fleet.current.cells") or "{}")
    assert kept == fleet_brief(harness.reconciler.compiler.desired(head))


def test_a_degraded_canary_is_rolled_back_and_nothing_else_moves(harness: Harness) -> None:
    before = {c: dict(harness.backend.cells[c].services) for c in CELLS}
    head = _bump(harness.repo, "broken")
    bad_hash = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.DEGRADED if h == bad_hash else Health.HEALTHY
    harness.run(harness.done(head))
    assert harness.latest() is RolloutState.HALTED
    assert [cell for cell, _ in harness.applied_events(head)] == ["canary"]
    assert {c: harness.backend.cells[c].services for c in CELLS} == before
    steps = harness.store.cell_steps(harness.store.rollouts(1)[0].id)
    assert steps["canary"][1] is CellStep.ROLLED_BACK
    assert steps["eu-1"][1] is steps["us-1"][1] is CellStep.SKIPPED


def test_the_progress_deadline_fails_a_cell_that_never_gets_ready(harness: Harness) -> None:
    head = _bump(harness.repo, "slow")
    slow = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == slow else Health.HEALTHY
    started = harness.clock.now
    harness.run(harness.done(head), passes=2000)
    failed = harness.store.events(kind="cell-failed")[-1]
    assert "progress deadline (300s)" in failed.message
    assert failed.at - started >= 300


def test_a_crash_between_failure_and_rollback_is_finished_on_resume(harness: Harness) -> None:
    head, bad, applies = _break_canary(harness)
    # the canary's next apply is the bad revision; the one after is the rollback: die there
    harness.backend.crash_on_apply = lambda cell, n: cell == "canary" and n == applies + 2
    harness.run(harness.done(head), crash_ok=True)
    assert harness.crashes == 1
    assert harness.latest() is RolloutState.HALTED
    assert harness.backend.cells["canary"].services["api"] != bad


def test_a_rollback_the_backend_could_not_reach_is_tried_again(harness: Harness) -> None:
    head, bad, applies = _break_canary(harness)
    down = BackendError("canary: cannot reach the API server", transient=True)
    # the rollback's first three tries find the API server down
    harness.backend.refuse_apply = lambda cell, n: (
        down if cell == "canary" and applies + 2 <= n <= applies + 4 else None
    )
    harness.run(harness.done(head))
    assert harness.latest() is RolloutState.HALTED
    harness.run(lambda: harness.backend.cells["canary"].services["api"] != bad, passes=50)
    retries = harness.store.events(kind="rollback-retry")
    assert len(retries) == 1  # recorded once, however many tries
    assert harness.store.events(kind="rolled-back")
    assert harness.store.events(kind="rollback-failed") == []


@pytest.mark.parametrize("after", [False, True], ids=["before-effect", "after-effect"])
def test_a_crash_at_any_apply_neither_repeats_nor_skips_a_wave(
    fleet: FleetRepo, tmp_path: Path, after: bool
) -> None:
    """Kill the controller at the k-th apply, for every k of a rollout, then resume."""
    order = {"canary": 1, "eu-1": 2, "us-1": 3}
    for k in range(1, 4):
        backend = FakeBackend()
        h = Harness(fleet, tmp_path / f"k{k}-{after}.db", backend)
        h.run(h.settled)
        head = _bump(fleet, f"v{k}{after}")
        counts = {c: backend.cells[c].applies for c in CELLS}

        def crash(cell: str, n: int, k: int = k, counts: dict[str, int] = counts) -> bool:
            return order[cell] == k and n == counts[cell] + 1

        if after:
            backend.crash_after_apply = crash
        else:
            backend.crash_on_apply = crash
        h.run(h.done(head), crash_ok=True)
        assert h.crashes == 1, k
        assert h.latest() is RolloutState.COMPLETED, k
        events = h.applied_events(head)
        assert sorted(cell for cell, _ in events) == sorted(CELLS), (k, events)  # once each
        final = h.reconciler.compiler.desired(head)
        for cell in CELLS:
            assert backend.cells[cell].services == {
                n: s.hash for n, s in final.cells[cell].services.items()
            }
        times = dict(events)
        assert times["canary"] < times["eu-1"] and times["canary"] < times["us-1"]


def test_a_newer_commit_supersedes_and_starts_with_the_canary(harness: Harness) -> None:
    harness.backend.health = lambda c, s, h: Health.PROGRESSING  # v2 never finishes
    v2 = _bump(harness.repo, "two")
    harness.run(lambda: bool(harness.applied_events(v2)))
    harness.backend.health = lambda c, s, h: Health.HEALTHY
    v3 = _bump(harness.repo, "three")
    harness.run(harness.done(v3))
    rollouts = {r.revision: r for r in harness.store.rollouts(5)}
    assert rollouts[v2].state is RolloutState.SUPERSEDED
    assert next(c for c, _ in harness.applied_events(v3)) == "canary"
    final = harness.reconciler.compiler.desired(v3)
    for cell in CELLS:
        assert harness.backend.cells[cell].services == {
            n: s.hash for n, s in final.cells[cell].services.items()
        }


def test_a_rejected_commit_touches_no_cell(harness: Harness) -> None:
    before = {
        c: (harness.backend.cells[c].applies, dict(harness.backend.cells[c].services))
        for c in CELLS
    }
    harness.repo.replace("cells/eu-1.yaml", "maxTenants: 10", "maxTenant: 10")
    head = harness.repo.commit("typo")
    harness.run(lambda: harness.store.revision(head) is not None)
    record = harness.store.revision(head)
    assert record is not None and not record.accepted
    assert record.problems[0]["file"] == "cells/eu-1.yaml"
    for _ in range(10):
        harness.reconciler.reconcile(check_source=True)
    assert {
        c: (harness.backend.cells[c].applies, harness.backend.cells[c].services) for c in CELLS
    } == before


def test_a_superseded_unproven_cell_is_gated_again(harness: Harness) -> None:
    """A newer commit that does not touch the half-rolled-out service must not leave it
    unchecked on the canary: the canary goes through the gate again and is rolled back."""
    good = harness.backend.cells["canary"].services["api"]
    v1 = _bump(harness.repo, "broken")
    bad = harness.reconciler.compiler.desired(v1).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == bad else Health.HEALTHY
    harness.run(lambda: bool(harness.applied_events(v1)))
    harness.repo.write("README.md", "# notes, not a fleet document\n")
    v2 = harness.repo.commit("a commit that changes no service")
    harness.run(harness.done(v2), passes=3000)
    rollouts = {r.revision: r for r in harness.store.rollouts(5)}
    assert rollouts[v1].state is RolloutState.SUPERSEDED
    assert rollouts[v2].state is RolloutState.HALTED
    assert [c for c, _ in harness.applied_events(v2)] == ["canary"]
    assert harness.backend.cells["canary"].services["api"] == good
    row = next(r for r in harness.store.ledger_rows("canary") if r.service == "api")
    assert row.applied_hash == row.good_hash == good


def test_idle_cells_are_looked_at_once_per_resync_of_their_backend(harness: Harness) -> None:
    harness.backend.resync = 10.0  # as a Kubernetes backend: each look costs API requests
    harness.backend.calls.clear()
    for _ in range(40):  # 10 s of passes, 0.25 s apart
        harness.reconciler.reconcile(check_source=False)
        harness.clock.now += 0.25
    looks = [cell for call, cell in harness.backend.calls if call == "observe"]
    assert sorted(looks) == sorted(CELLS)  # each cell once in the 10 s, not 10 times
    for _ in range(8):  # the next drift pass after the 10 s looks again
        harness.reconciler.reconcile(check_source=False)
        harness.clock.now += 0.25
    looks = [cell for call, cell in harness.backend.calls if call == "observe"]
    assert sorted(looks) == sorted(CELLS * 2)


def test_a_cell_whose_rollback_is_pending_is_left_to_the_rollout(harness: Harness) -> None:
    _, _, applies = _break_canary(harness)
    down = BackendError("canary: cannot reach the API server", transient=True)
    harness.backend.refuse_apply = lambda cell, n: (
        down if cell == "canary" and n > applies + 1 else None
    )
    harness.run(lambda: bool(harness.store.events(kind="rollback-retry")))
    harness.backend.calls.clear()
    for _ in range(8):  # two seconds of passes: keep_cells would look at every cell
        harness.reconciler.reconcile(check_source=False)
        harness.clock.now += 0.25
    looked = {cell for call, cell in harness.backend.calls if call == "observe"}
    assert "canary" not in looked and {"eu-1", "us-1"} <= looked
