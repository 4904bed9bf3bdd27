"""The rollout's promises at their edges, from an attacker's review: cells a halted,
superseded or completed rollout left on its revision, commits gone from Git, rollouts and
ledgers stored by an earlier version, every batch of the canary wave, cells that stop
answering or flap through a bake, teardowns that fail. Same harness as
test_rollout_machine.py: real store, real Git repo, real compiler; scripted cells, fake time.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pygit2

from cellops.backends.base import CellObservation
from cellops.backends.fake import FakeBackend
from cellops.health import Health
from cellops.model.errors import BackendError
from cellops.render import DesiredCell, DesiredService
from cellops.store.records import CellStep, Phase, RolloutState
from tests.component.test_rollout_machine import Harness, _bump
from tests.fleetrepo import FleetRepo


def _policy(repo: FleetRepo, extra: str) -> None:
    repo.replace("cellops.yaml", "  rollout:\n", f"  rollout:\n{extra}")


def _steps(harness: Harness) -> dict[str, CellStep]:
    latest = harness.store.rollouts(1)[0]
    return {c: step for c, (_, step, _) in harness.store.cell_steps(latest.id).items()}


def _passes(harness: Harness, n: int, check_source: bool = True) -> None:
    for _ in range(n):
        harness.reconciler.reconcile(check_source=check_source)
        harness.clock.now += 0.25


def _hashes(harness: Harness, rev: str, service: str = "api") -> dict[str, str]:
    fleet = harness.reconciler.compiler.desired(rev)
    return {c: cell.services[service].hash for c, cell in fleet.cells.items()}


def _rewrite_history(repo: FleetRepo) -> None:
    """A force-push of a fresh history (the working tree as it is now) and `git gc
    --prune=now`: every commit the store names is gone from Git."""
    shutil.rmtree(repo.path / ".git")
    repo.repo = pygit2.init_repository(str(repo.path), initial_head="main")
    repo.write("NOTES.md", "history rewritten\n")
    repo.commit("a new root commit")


# -- 1. a failing cell of a halted rollout is abandoned when a newer commit arrives -------
def test_a_failing_cell_of_a_halted_rollout_is_not_abandoned_by_the_next_commit(
    harness: Harness,
) -> None:
    """v1 crashes in both cells of the `rest` batch: eu-1 at once (the rollout halts), us-1
    a few seconds later. The operator pushes a fix attempt v2 at once, which fails on the
    canary. us-1 must not stay on v1, crash-looping, for good."""
    v1 = _bump(harness.repo, "v1")
    bad1 = _hashes(harness, v1)
    first_seen: dict[str, float] = {}

    def health(cell: str, service: str, hash_: str) -> Health:
        if service != "api":
            return Health.HEALTHY
        if cell == "eu-1" and hash_ == bad1["eu-1"]:
            return Health.DEGRADED
        if cell == "us-1" and hash_ == bad1["us-1"]:
            start = first_seen.setdefault(cell, harness.clock.now)
            return Health.DEGRADED if harness.clock.now - start > 5 else Health.PROGRESSING
        if cell == "canary" and hash_ == bad2.get("canary"):
            return Health.DEGRADED
        return Health.HEALTHY

    bad2: dict[str, str] = {}
    harness.backend.health = health
    harness.run(harness.done(v1))
    assert harness.latest() is RolloutState.HALTED
    assert _steps(harness)["us-1"] is CellStep.APPLIED  # still being judged after the halt
    v2 = _bump(harness.repo, "v2")  # the fix attempt, pushed right away
    bad2.update(_hashes(harness, v2))
    harness.run(harness.done(v2))
    assert harness.latest() is RolloutState.HALTED  # v2 failed on the canary
    _passes(harness, 1600)  # 400 s: longer than any deadline
    assert harness.backend.cells["us-1"].services["api"] != bad1["us-1"], (
        "us-1 is left crash-looping on v1: the halted rollout that gave it v1 is no longer"
        " stepped, and the new rollout skipped it"
    )


# -- 2. a rollout that completes while a rollback is pending never finishes it --------------
def test_a_rollback_pending_when_the_rollout_completes_is_still_done(harness: Harness) -> None:
    _policy(harness.repo, "    failureBudget: 1\n")
    harness.repo.commit("tolerate one failure")
    harness.run(harness.settled)
    v1 = _bump(harness.repo, "eu-breaks")
    bad = _hashes(harness, v1)["eu-1"]
    harness.backend.health = lambda c, s, h: (
        Health.DEGRADED if (c, h) == ("eu-1", bad) else Health.HEALTHY
    )
    applies = harness.backend.cells["eu-1"].applies
    down_until = harness.clock.now + 30  # eu-1's API server is down for 30 s
    down = BackendError("eu-1: cannot reach the API server", transient=True)
    harness.backend.refuse_apply = lambda cell, n: (
        down if cell == "eu-1" and n > applies + 1 and harness.clock.now < down_until else None
    )
    harness.run(harness.done(v1))
    _passes(harness, 400)  # 100 s: the API server has long been back
    latest = harness.store.rollouts(1)[0]
    assert harness.backend.cells["eu-1"].services["api"] != bad, (
        f"eu-1 left on the bad revision; rollout {latest.state}: {latest.reason!r},"
        f" eu-1 {_steps(harness)['eu-1']}"
    )


# -- 3. a rollout stored by the previous schema wedges the controller after a force-push ---
def _make_legacy(harness: Harness) -> None:
    """Rewrite every stored rollout's plan as the previous version stored it: a bare list
    of waves, no policy."""
    db = harness.store._db
    for row in db.execute("SELECT id, plan FROM rollouts").fetchall():
        waves = json.loads(row["plan"])["waves"]
        db.execute("UPDATE rollouts SET plan = ? WHERE id = ?", (json.dumps(waves), row["id"]))
    db.commit()


def test_a_legacy_rollout_whose_commit_is_gone_does_not_wedge_the_controller(
    harness: Harness,
) -> None:
    v1 = _bump(harness.repo, "v1")
    bad = _hashes(harness, v1)["canary"]
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == bad else Health.HEALTHY
    harness.run(lambda: bool(harness.applied_events(v1)))
    _make_legacy(harness)  # the controller is upgraded mid-rollout
    _rewrite_history(harness.repo)
    harness.restart()
    errors = []
    for _ in range(20):
        try:
            harness.reconciler.reconcile(check_source=True)
        except Exception as exc:  # the loop would log "controller-error" and go on
            errors.append(repr(exc))
        harness.clock.now += 0.25
    assert not errors, f"{len(errors)} of 20 passes failed, e.g. {errors[0]}"


def test_a_completed_legacy_rollout_whose_commit_is_gone_does_not_wedge_the_controller(
    harness: Harness,
) -> None:
    """No rollout running: the controller is upgraded, then history is rewritten with the
    same content (the new head changes no cell, so no new rollout is started). `step`
    asks Git for the policy of the latest, completed, rollout on every pass."""
    _make_legacy(harness)
    _rewrite_history(harness.repo)
    harness.restart()
    errors = []
    for _ in range(20):
        try:
            harness.reconciler.reconcile(check_source=True)
        except Exception as exc:
            errors.append(repr(exc))
        harness.clock.now += 0.25
    assert not errors, f"{len(errors)} of 20 passes failed, e.g. {errors[0]}"


# -- 4. a running rollout whose commit was pruned errors on every pass ---------------------
def test_a_rollout_whose_commit_is_gone_is_ended_not_retried_every_pass(
    harness: Harness,
) -> None:
    """A force-push whose new head is rejected (so nothing supersedes the running rollout),
    then `git gc`: the canary, failing on the bad revision, must still be rolled back (the
    store holds its good state) and the controller must not fail every pass."""
    v1 = _bump(harness.repo, "v1")
    bad = _hashes(harness, v1)["canary"]
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == bad else Health.HEALTHY
    harness.run(lambda: bool(harness.applied_events(v1)))
    harness.repo.replace("cells/eu-1.yaml", "maxTenants: 10", "maxTenant: 10")  # rejected
    _rewrite_history(harness.repo)
    harness.restart()
    harness.backend.health = lambda c, s, h: Health.DEGRADED if h == bad else Health.HEALTHY
    errors = []
    for _ in range(40):
        try:
            harness.reconciler.reconcile(check_source=True)
        except Exception as exc:
            errors.append(repr(exc))
        harness.clock.now += 0.25
    assert harness.backend.cells["canary"].services["api"] != bad, (
        f"the degraded canary is left on the bad revision; {len(errors)} of 40 passes"
        f" failed, e.g. {errors[:1]}"
    )
    assert not errors


# -- 5. a store migrated from the previous schema rolls back to the bad cell settings ------
@dataclass
class RecordingBackend(FakeBackend):
    applied_cells: list[DesiredCell] = field(default_factory=list)

    def apply(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        self.applied_cells.append(cell)
        return super().apply(cell, services)


def test_a_rollback_on_a_migrated_store_restores_the_good_cell_settings(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    backend = RecordingBackend()
    h = Harness(fleet, tmp_path / "cellops.db", backend)
    h.run(h.settled)
    v0 = h.store.rollouts(1)[0].revision
    # the store as migration 3 leaves one written by the previous version
    db = h.store._db
    db.execute("UPDATE ledger SET applied_spec = NULL, good_spec = NULL")
    db.execute("UPDATE cells SET applied_cell = NULL, good_cell = NULL")
    db.commit()
    # v1 moves the canary to another address and breaks the api there
    h.repo.replace(
        "cells/canary.yaml", "backend: local", "backend: {type: local, address: 127.9.9.9}"
    )
    v1 = _bump(h.repo, "broken")
    bad = _hashes(h, v1)["canary"]
    backend.health = lambda c, s, hash_: Health.DEGRADED if hash_ == bad else Health.HEALTHY
    h.run(h.done(v1))
    assert h.latest() is RolloutState.HALTED
    good_cell = h.reconciler.compiler.desired(v0).cells["canary"]
    rollback = [c for c in backend.applied_cells if c.name == "canary"][-1]
    assert rollback.services["api"].hash != bad  # the services did go back...
    assert rollback.spec == good_cell.spec, (  # ...but the cell stayed as v1 described it
        f"rolled back with v1's cell settings {rollback.spec.backend}, not the good"
        f" {good_cell.spec.backend}"
    )


# -- 6. the canary wave split in batches tolerates failures in its later batches -----------
def test_every_batch_of_the_declared_canary_wave_tolerates_no_failure(harness: Harness) -> None:
    """`PlanRecord.is_canary` says so; the planner marks only the first batch."""
    harness.repo.replace("cells/eu-1.yaml", "ring: main", "ring: canary")
    harness.repo.replace(
        "cellops.yaml", "        bake: 1s\n", "        bake: 1s\n        maxConcurrent: 1\n"
    )
    _policy(harness.repo, "    failureBudget: 1\n")
    harness.repo.commit("two canaries, one at a time; tolerate one failure")
    harness.run(harness.settled)
    before = dict(harness.backend.cells["us-1"].services)
    v1 = _bump(harness.repo, "breaks-on-eu-1")
    bad = _hashes(harness, v1)["eu-1"]
    harness.backend.health = lambda c, s, h: (
        Health.DEGRADED if (c, h) == ("eu-1", bad) else Health.HEALTHY
    )
    harness.run(harness.done(v1))
    rollout = harness.store.rollouts(1)[0]
    waves = [(w.name, w.batch, w.canary) for w in rollout.plan.waves]
    assert harness.backend.cells["us-1"].services == before, (
        f"a failure in the canary wave's second batch let the revision reach us-1 ({waves};"
        f" rollout {rollout.state}: {rollout.reason!r})"
    )
    assert rollout.state is RolloutState.HALTED


# -- 7. a cell unreachable during bake holds the rollout forever ---------------------------
@dataclass
class ScriptedBackend(FakeBackend):
    unreachable: set[str] = field(default_factory=set)
    restarts: dict[str, int] = field(default_factory=dict)

    def observe(self, cell: str) -> CellObservation:
        if cell in self.unreachable:
            self.calls.append(("observe", cell))
            return CellObservation(cell, reachable=False, reason="agent not answering")
        seen = super().observe(cell)
        services = {
            n: replace(s, restarts=self.restarts.get(cell, 0)) for n, s in seen.services.items()
        }
        return replace(seen, services=services)


def test_a_cell_that_stops_answering_during_bake_does_not_hold_the_rollout_forever(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    backend = ScriptedBackend()
    h = Harness(fleet, tmp_path / "cellops.db", backend)
    h.run(h.settled)
    h.repo.replace("cellops.yaml", "bake: 1s", "bake: 30s")
    v1 = _bump(h.repo, "v1")
    h.run(lambda: h.store.rollouts(1)[0].phase is Phase.BAKE)
    backend.unreachable.add("canary")
    _passes(h, 4000)  # 1000 s, over three progress deadlines
    rollout = h.store.rollouts(1)[0]
    assert rollout.revision == v1
    assert not (rollout.state is RolloutState.RUNNING and rollout.phase is Phase.BAKE), (
        f"still baking after 1000 s without a look at the canary (baked {rollout.baked}s);"
        " no deadline, no halt, no reason"
    )


# -- 8. a replica crash during bake is missed when the bake's first look found no services --
def test_restarts_during_bake_are_noticed_after_an_unanswered_first_look(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    backend = ScriptedBackend()
    h = Harness(fleet, tmp_path / "cellops.db", backend)
    h.run(h.settled)
    h.repo.replace("cellops.yaml", "bake: 1s", "bake: 30s")
    v1 = _bump(h.repo, "crashes-now-and-then")
    h.run(lambda: h.store.rollouts(1)[0].phase is Phase.BAKE)
    backend.unreachable.add("canary")  # the bake's first look: the agent does not answer
    _passes(h, 1)
    backend.unreachable.clear()
    for _ in range(200):  # then a replica crashes every 2 s and is back before each look
        backend.restarts["canary"] = backend.restarts.get("canary", 0) + (
            1 if int(h.clock.now * 4) % 8 == 0 else 0
        )
        _passes(h, 1)
        if h.applied_events(v1)[1:]:
            break
    assert backend.restarts["canary"] > 5
    assert [c for c, _ in h.applied_events(v1)] == ["canary"], (
        "the canary's replica crashed again and again during its bake, and v1 spread anyway"
    )


# -- 9. a cell removed from the fleet whose teardown fails is reported as reached -----------
@dataclass
class UndeletableBackend(FakeBackend):
    def delete(self, cell: str) -> None:
        raise BackendError(f"{cell}: namespace is terminating with finalizers", transient=False)


def test_a_removed_cell_whose_teardown_fails_is_not_reported_reached(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    backend = UndeletableBackend()
    h = Harness(fleet, tmp_path / "cellops.db", backend)
    h.run(h.settled)
    h.repo.remove("cells/us-1.yaml")
    v1 = h.repo.commit("us-1 leaves the fleet")
    h.run(h.done(v1))
    latest = h.store.rollouts(1)[0]
    steps = h.store.cell_steps(latest.id)
    message = (
        h.store.events(kind="rollout-completed")[-1].message
        if latest.state is (RolloutState.COMPLETED)
        else latest.reason
    )
    assert "us-1" in backend.cells  # it was not torn down
    assert steps["us-1"][1] is not CellStep.PENDING, (
        f"us-1 left pending in a {latest.state} rollout: {message!r}"
    )
    assert "every planned cell" not in message


# -- 10. a canary wave made of a teardown proves nothing, and the next wave is wide --------
def test_a_canary_wave_that_only_tears_a_cell_down_does_not_let_a_bad_change_go_wide(
    harness: Harness,
) -> None:
    """The commit retires the canary cell and changes the api everywhere: the canary wave
    picks no cell by its selector, the fallback takes the first changed cell, which is the
    teardown; the broken api then goes to every other cell at once."""
    harness.repo.remove("cells/canary.yaml")
    text = harness.repo.read("services/api/service.yaml")
    harness.repo.write("services/api/service.yaml", text.replace("MODE: normal", "MODE: broken"))
    v1 = harness.repo.commit("retire the canary cell; api broken")
    bad = _hashes(harness, v1)
    harness.backend.health = lambda c, s, h: (
        Health.DEGRADED if s == "api" and h == bad.get(c) else Health.HEALTHY
    )
    harness.run(harness.done(v1))
    rollout = harness.store.rollouts(1)[0]
    waves = [(w.name, w.cell_names) for w in rollout.plan.waves]
    given = [c for c, _ in harness.applied_events(v1)]
    assert len(given) <= 1, f"the broken api reached {given}; waves {waves}"


# -- 11. a cell seen healthy once before the halt is never judged again ---------------------
def test_a_cell_healthy_at_the_halt_that_crashes_later_is_rolled_back(harness: Harness) -> None:
    """v1 degrades eu-1 a few seconds after its apply (the rollout halts); us-1, of the
    same batch, passed its readiness at once and starts crash-looping a little later. It
    holds the halted revision: it must be judged and rolled back like any other."""
    v1 = _bump(harness.repo, "crashes-under-load")
    bad = _hashes(harness, v1)
    start: dict[str, float] = {}

    def health(cell: str, service: str, hash_: str) -> Health:
        if service != "api" or cell == "canary" or hash_ != bad[cell]:
            return Health.HEALTHY
        t = harness.clock.now - start.setdefault(cell, harness.clock.now)
        if cell == "eu-1":
            return Health.DEGRADED if t > 3 else Health.PROGRESSING
        return Health.DEGRADED if t > 6 else Health.HEALTHY

    harness.backend.health = health
    harness.run(harness.done(v1))
    assert harness.latest() is RolloutState.HALTED
    _passes(harness, 400)  # 100 s
    assert harness.backend.cells["us-1"].services["api"] != bad["us-1"], (
        f"us-1 crash-loops on the halted revision, step {_steps(harness)['us-1']}"
    )


# -- 12. a superseded rollout's cells are left in steps that say they are still moving ------
def test_every_cell_of_a_superseded_rollout_ends_in_a_terminal_step(harness: Harness) -> None:
    moving = {CellStep.PENDING, CellStep.APPLIED, CellStep.HEALTHY, CellStep.FAILED}
    harness.backend.health = lambda c, s, h: Health.PROGRESSING  # v2 never finishes
    v2 = _bump(harness.repo, "two")
    harness.run(lambda: bool(harness.applied_events(v2)))
    harness.backend.health = lambda c, s, h: Health.HEALTHY
    v3 = _bump(harness.repo, "three")
    harness.run(harness.done(v3))
    old = next(r for r in harness.store.rollouts(5) if r.revision == v2)
    assert old.state is RolloutState.SUPERSEDED
    steps = {c: step for c, (_, step, _) in harness.store.cell_steps(old.id).items()}
    assert not {c: s for c, s in steps.items() if s in moving}, steps


# -- 13. a cell that flaps between ready and unready through its whole bake passes it -------
def test_a_cell_flapping_through_its_whole_bake_does_not_pass_it(harness: Harness) -> None:
    """Readiness fails every other look for the whole bake (a replica that keeps dropping
    out of its service): no single unhealthy stretch reaches the grace, so the bake never
    fails; each healthy look is credited with the time since the unhealthy one."""
    harness.repo.replace("cellops.yaml", "bake: 1s", "bake: 30s")
    v1 = _bump(harness.repo, "flaps")
    new = _hashes(harness, v1)["canary"]
    looks = {"n": 0}

    def health(cell: str, service: str, hash_: str) -> Health:
        if hash_ != new or service != "api":
            return Health.HEALTHY
        looks["n"] += 1
        return Health.HEALTHY if looks["n"] % 2 else Health.PROGRESSING

    harness.backend.health = health
    harness.run(lambda: harness.store.rollouts(1)[0].phase is Phase.BAKE)
    _passes(harness, 800)  # 200 s of flapping
    given = [c for c, _ in harness.applied_events(v1)]
    assert given == ["canary"], (
        f"a canary unready at half of its looks baked and v1 went on to {given[1:]}"
    )
