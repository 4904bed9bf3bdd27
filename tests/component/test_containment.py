"""The rollout keeps its promise under every failure: a bad revision never leaves the
canary wave whatever the policy, every failing cell is rolled back, no cell is emptied,
time is what the controller observed, and no commit wedges the controller.

Same harness as test_rollout_machine.py: real store, real Git repo, real compiler; the
cells are scripted (FakeBackend) and time is fake.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2

from cellops.backends.fake import FakeBackend
from cellops.controller.reconcile import RETRY
from cellops.health import Health
from cellops.store.records import CellStep, Phase, RolloutState
from tests.component.test_rollout_machine import CELLS, Harness, _break_canary, _bump
from tests.fleetrepo import FleetRepo


def _policy(repo: FleetRepo, extra: str) -> None:
    repo.replace("cellops.yaml", "  rollout:\n", f"  rollout:\n{extra}")


def _steps(harness: Harness) -> dict[str, CellStep]:
    latest = harness.store.rollouts(1)[0]
    return {c: step for c, (_, step, _) in harness.store.cell_steps(latest.id).items()}


def test_a_failure_budget_never_lets_a_failed_canary_revision_spread(harness: Harness) -> None:
    _policy(harness.repo, "    failureBudget: 1\n")
    harness.repo.commit("tolerate one failure")
    harness.run(harness.settled)
    before = {c: dict(harness.backend.cells[c].services) for c in ("eu-1", "us-1")}
    head, bad, _ = _break_canary(harness)
    harness.run(harness.done(head))
    latest = harness.store.rollouts(1)[0]
    assert latest.state is RolloutState.HALTED, latest.reason
    assert latest.reason.startswith("canary failed in the canary wave, which tolerates no")
    assert [c for c, _ in harness.applied_events(head)] == ["canary"]
    assert {c: harness.backend.cells[c].services for c in ("eu-1", "us-1")} == before
    assert harness.backend.cells["canary"].services["api"] != bad
    assert _steps(harness)["eu-1"] is CellStep.SKIPPED


def test_a_completed_rollout_with_a_rolled_back_cell_says_so(harness: Harness) -> None:
    _policy(harness.repo, "    failureBudget: 1\n")
    head = _bump(harness.repo, "eu-breaks")
    bad = harness.reconciler.compiler.desired(head).cells["eu-1"].services["api"].hash
    harness.backend.health = lambda c, s, h: (
        Health.DEGRADED if (c, h) == ("eu-1", bad) else Health.HEALTHY
    )
    harness.run(harness.done(head))
    latest = harness.store.rollouts(1)[0]
    assert latest.state is RolloutState.COMPLETED
    assert latest.reason == "eu-1 rolled back" and latest.failures == 1
    done = harness.store.events(kind="rollout-completed")[-1].message
    assert "reached 2 of 3 planned cells; eu-1 rolled back" in done
    assert "every" not in done
    assert _steps(harness) == {
        "canary": CellStep.GOOD,
        "eu-1": CellStep.RECOVERED,
        "us-1": CellStep.GOOD,
    }


def test_every_failing_cell_of_a_halted_batch_is_rolled_back(harness: Harness) -> None:
    good = {c: harness.backend.cells[c].services["api"] for c in ("eu-1", "us-1")}
    head = _bump(harness.repo, "crashes-outside-the-canary")
    fleet = harness.reconciler.compiler.desired(head)
    bad = {c: fleet.cells[c].services["api"].hash for c in ("eu-1", "us-1")}
    # eu-1 degrades at once; us-1 a little later (it was still progressing at the halt)
    seen: dict[str, float] = {}

    def health(cell: str, service: str, hash_: str) -> Health:
        if bad.get(cell) != hash_:
            return Health.HEALTHY
        if cell == "eu-1":
            return Health.DEGRADED
        first = seen.setdefault(cell, harness.clock.now)
        return Health.DEGRADED if harness.clock.now - first > 5 else Health.PROGRESSING

    harness.backend.health = health
    harness.run(harness.done(head))
    harness.run(lambda: _steps(harness)["us-1"] is not CellStep.APPLIED, passes=200)
    harness.run(lambda: _steps(harness)["us-1"] is CellStep.RECOVERED, passes=40)
    assert {c: harness.backend.cells[c].services["api"] for c in ("eu-1", "us-1")} == good
    assert harness.store.rollouts(1)[0].state is RolloutState.HALTED


def test_on_failure_halt_keeps_supervising_the_failed_cell(harness: Harness) -> None:
    _policy(harness.repo, "    onFailure: halt\n")
    head, bad, _ = _break_canary(harness)
    harness.run(harness.done(head))
    assert _steps(harness)["canary"] is CellStep.KEPT
    assert harness.backend.cells["canary"].services["api"] == bad  # left as it is
    applies = harness.backend.cells["canary"].applies
    harness.backend.cells["canary"].document = "changed by hand"
    harness.run(lambda: harness.backend.cells["canary"].applies > applies, passes=20)
    assert harness.backend.cells["canary"].services["api"] == bad
    assert any(e.cell == "canary" for e in harness.store.events(kind="drift"))


def test_one_unhealthy_sample_during_bake_does_not_fail_the_cell(harness: Harness) -> None:
    """The demo's flake: a replica briefly unready right after the cell turned healthy."""
    head = _bump(harness.repo, "flaky-once")
    new = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    flaps = iter([Health.HEALTHY, Health.PROGRESSING, Health.PROGRESSING])

    def health(cell: str, service: str, hash_: str) -> Health:
        return next(flaps, Health.HEALTHY) if hash_ == new else Health.HEALTHY

    harness.backend.health = health
    harness.run(harness.done(head))
    assert harness.latest() is RolloutState.COMPLETED
    assert harness.store.events(kind="cell-failed") == []


def test_a_cell_unhealthy_beyond_the_grace_fails_its_bake(harness: Harness) -> None:
    # the api's readiness probe: period 10 s x failureThreshold 3 = a 30 s grace
    _policy(harness.repo, "")
    harness.repo.replace("cellops.yaml", "bake: 1s", "bake: 60s")
    head = _bump(harness.repo, "degrades-later")
    new = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    healthy_until: dict[str, float] = {}

    def health(cell: str, service: str, hash_: str) -> Health:
        if hash_ != new:
            return Health.HEALTHY
        until = healthy_until.setdefault(cell, harness.clock.now + 3)
        return Health.HEALTHY if harness.clock.now < until else Health.PROGRESSING

    harness.backend.health = health
    harness.run(harness.done(head), passes=1000)
    failed = harness.store.events(kind="cell-failed")[-1]
    assert "during bake (grace 30s)" in failed.message
    assert failed.at - healthy_until["canary"] >= 30
    assert harness.latest() is RolloutState.HALTED


def test_bake_counts_only_time_the_controller_watched(harness: Harness) -> None:
    harness.repo.replace("cellops.yaml", "bake: 1s", "bake: 30s")
    head = _bump(harness.repo, "slow-bake")
    harness.run(lambda: harness.store.rollouts(1)[0].phase is Phase.BAKE)
    harness.clock.now += 3600  # the controller was down through the whole bake window
    harness.restart()
    looks = 0
    while not harness.applied_events(head)[1:]:
        harness.reconciler.reconcile(check_source=True)
        harness.clock.now += 0.25
        looks += 1
        assert looks < 400
    assert looks * 0.25 >= 30  # the whole bake, watched again


def test_a_stalled_controller_does_not_count_the_stall_as_bake(harness: Harness) -> None:
    harness.repo.replace("cellops.yaml", "bake: 1s", "bake: 30s")
    head = _bump(harness.repo, "stalled-bake")
    harness.run(lambda: harness.store.rollouts(1)[0].phase is Phase.BAKE)
    harness.reconciler.reconcile(check_source=False)
    harness.clock.now += 3600  # the same process, suspended (SIGSTOP, a laptop asleep)
    for _ in range(3):
        harness.reconciler.reconcile(check_source=False)
        harness.clock.now += 0.25
    assert harness.applied_events(head)[1:] == []
    assert harness.store.rollouts(1)[0].baked <= 7  # at most MAX_GAP for the stall


def test_paused_time_does_not_count_toward_the_progress_deadline(harness: Harness) -> None:
    head = _bump(harness.repo, "slow")
    slow = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == slow else Health.HEALTHY
    harness.run(lambda: bool(harness.applied_events(head)))
    rollout = harness.store.rollouts(1)[0]
    harness.store.update_rollout(rollout.id, harness.clock.now, paused=1)
    for _ in range(2000):  # 500 s paused
        harness.reconciler.reconcile(check_source=False)
        harness.clock.now += 0.25
    harness.store.update_rollout(rollout.id, harness.clock.now, paused=0)
    resumed = harness.clock.now
    harness.run(harness.done(head), passes=2000)
    failed = harness.store.events(kind="cell-failed")[-1]
    assert "progress deadline" in failed.message
    assert failed.at - resumed >= 250  # the deadline's 300 s, minus what ran before the pause


def test_a_lost_store_never_empties_a_cell(fleet: FleetRepo, tmp_path: Path) -> None:
    backend = FakeBackend()
    first = Harness(fleet, tmp_path / "first.db", backend)
    first.run(first.settled)
    running = {c: dict(backend.cells[c].services) for c in CELLS}
    # the store is lost; a new one knows no good state of any cell
    fresh = Harness(fleet, tmp_path / "fresh.db", backend)
    fresh.clock.now = first.clock.now
    head, bad, _ = _break_canary(fresh)
    fresh.run(fresh.done(head))
    latest = fresh.store.rollouts(1)[0]
    assert latest.state is RolloutState.HALTED
    assert "no known good state" in latest.reason
    assert backend.cells["canary"].services  # not emptied: left as it was
    assert backend.cells["canary"].services["api"] == bad
    assert {c: backend.cells[c].services for c in ("eu-1", "us-1")} == {
        c: running[c] for c in ("eu-1", "us-1")
    }
    assert fresh.store.events(kind="rollback-impossible")


def _rewrite_history(repo: FleetRepo) -> None:
    """A force-push of a fresh history and `git gc --prune=now`: every commit the store
    names is gone from Git."""
    shutil.rmtree(repo.path / ".git")
    repo.repo = pygit2.init_repository(str(repo.path), initial_head="main")
    repo.write("NOTES.md", "history rewritten\n")
    repo.commit("a new root commit")


def test_supervision_and_rollback_survive_rewritten_history(harness: Harness) -> None:
    head, bad, _ = _break_canary(harness)
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == bad else Health.HEALTHY
    harness.run(lambda: bool(harness.applied_events(head)))
    _rewrite_history(harness.repo)
    harness.restart()
    # supervision: a cell changed by hand is put back from the store alone
    applies = harness.backend.cells["eu-1"].applies
    harness.backend.cells["eu-1"].document = "changed by hand"
    harness.run(lambda: harness.backend.cells["eu-1"].applies > applies, passes=20)
    # the canary's bad revision is rolled back once it fails, from the stored good state
    harness.backend.health = lambda c, s, h: Health.DEGRADED if h == bad else Health.HEALTHY
    harness.run(lambda: harness.backend.cells["canary"].services["api"] != bad, passes=100)
    errors = [e.message for e in harness.store.events(kind="controller-error")]
    assert not errors


def test_an_error_while_judging_a_commit_rejects_it_and_the_controller_goes_on(
    harness: Harness,
) -> None:
    head = _bump(harness.repo, "poison")

    def poison(revision: object, desired: object) -> list[object]:
        raise RecursionError("maximum recursion depth exceeded")

    checks = harness.reconciler.compiler.checks
    harness.reconciler.compiler.checks = (*checks, poison)  # type: ignore[arg-type]
    harness.reconciler.reconcile(check_source=True)  # must not raise
    record = harness.store.revision(head)
    assert record is not None and not record.accepted
    assert "RecursionError" in str(record.problems[0]["message"])
    harness.reconciler.compiler.checks = checks
    fixed = _bump(harness.repo, "fixed")
    harness.run(harness.done(fixed))
    assert harness.latest() is RolloutState.COMPLETED


def test_a_halted_rollout_can_be_retried_without_a_commit(harness: Harness) -> None:
    head, _, _ = _break_canary(harness)
    harness.run(harness.done(head))
    halted = harness.store.rollouts(1)[0]
    harness.backend.health = lambda c, s, h: Health.HEALTHY  # the outside cause is fixed
    harness.store.set_setting(RETRY, str(halted.id))
    harness.run(lambda: harness.store.rollouts(1)[0].id != halted.id, passes=4)
    harness.run(harness.done(head))
    retried = harness.store.rollouts(1)[0]
    assert retried.revision == head and retried.state is RolloutState.COMPLETED
    assert [c for c, _ in harness.applied_events(head)][:2] == ["canary", "canary"]
    assert harness.store.setting(RETRY) is None
    assert all(harness.backend.cells[c].services["api"] != "" for c in CELLS)


def test_a_retry_of_a_completed_rollout_is_refused(harness: Harness) -> None:
    latest = harness.store.rollouts(1)[0]
    harness.store.set_setting(RETRY, str(latest.id))
    harness.reconciler.reconcile(check_source=False)
    assert harness.store.rollouts(1)[0].id == latest.id
    assert "is completed" in harness.store.events(kind="retry-refused")[-1].message
