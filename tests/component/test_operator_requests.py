"""Operators' requests carried out by the controller (real store, Git fleet and compiler,
scripted cells, fake time): a manual wave waits for its approval, a promoted wave's bake
ends early, a requested rollback returns cells to their last good state."""

from __future__ import annotations

from cellops.controller import operator
from cellops.store.records import CellStep, Phase, RolloutState
from tests.component.test_rollout_machine import Harness, _bump


def _policy(harness: Harness, old: str, new: str) -> None:
    harness.repo.replace("cellops.yaml", old, new)


def _steps(harness: Harness) -> dict[str, tuple[CellStep, str]]:
    rollout = harness.store.rollouts(1)[0]
    return {c: (s, r) for c, (_, s, r) in harness.store.cell_steps(rollout.id).items()}


def test_a_manual_wave_waits_until_approved(harness: Harness) -> None:
    _policy(harness, "        percent: 100\n", "        percent: 100\n        approval: manual\n")
    head = _bump(harness.repo, "gated")
    harness.run(lambda: bool(harness.store.events(kind="approval-needed")))
    for _ in range(200):  # 50 s of passes: the canary is done, nothing else moves
        harness.reconciler.reconcile(check_source=True)
        harness.clock.now += 0.25
    assert [cell for cell, _ in harness.applied_events(head)] == ["canary"]
    steps = _steps(harness)
    assert steps["canary"][0] is CellStep.GOOD
    assert steps["eu-1"] == (CellStep.PENDING, "waiting for approval of wave rest")
    assert len(harness.store.events(kind="approval-needed")) == 1  # said once
    rollout = harness.store.rollouts(1)[0]
    assert (rollout.state, rollout.wave, rollout.phase) == (RolloutState.RUNNING, 1, Phase.APPLY)
    approved_at = harness.clock.now
    assert "approved" in operator.approve(harness.store, approved_at, None, "alice")
    harness.run(harness.done(head))
    assert harness.latest() is RolloutState.COMPLETED
    later = [at for cell, at in harness.applied_events(head) if cell != "canary"]
    assert len(later) == 2 and min(later) >= approved_at


def test_approving_a_wave_that_needs_none_is_refused(harness: Harness) -> None:
    head = _bump(harness.repo, "plain")
    harness.run(lambda: harness.store.active_rollout() is not None)
    try:
        operator.approve(harness.store, harness.clock.now, "rest")
    except operator.Refused as refused:
        assert refused.kind == "conflict" and "needs no approval" in str(refused)
    else:
        raise AssertionError("approved a wave without `approval: manual`")
    harness.run(harness.done(head))


def test_a_promoted_wave_ends_its_bake_early(harness: Harness) -> None:
    _policy(harness, "        bake: 1s\n", "        bake: 1h\n")
    head = _bump(harness.repo, "baking")

    def baking() -> bool:
        rollout = harness.store.active_rollout()
        return rollout is not None and rollout.phase is Phase.BAKE

    harness.run(baking)
    started = harness.clock.now
    operator.promote(harness.store, started, "bob")
    harness.run(harness.done(head))
    assert harness.latest() is RolloutState.COMPLETED
    assert harness.clock.now - started < 60  # not the hour
    done = [e.message for e in harness.store.events(kind="wave-done", limit=5)]
    assert "wave canary done (promoted: bake ended early)" in done
    assert harness.store.setting(operator.PROMOTE) is None


def test_a_requested_rollback_returns_a_cell_to_its_last_good_state(harness: Harness) -> None:
    good = dict(harness.backend.cells["canary"].services)
    _policy(harness, "        bake: 1s\n", "        bake: 1h\n")
    head = _bump(harness.repo, "doubtful")
    harness.run(lambda: _steps(harness).get("canary", (None,))[0] is CellStep.HEALTHY)
    assert harness.backend.cells["canary"].services != good
    operator.steer(harness.store, "pause", harness.clock.now)
    operator.rollback(harness.store, harness.clock.now, cell="canary", by="carol")
    harness.run(lambda: _steps(harness)["canary"][0] is CellStep.RECOVERED, passes=40)
    assert harness.backend.cells["canary"].services == good
    rows = harness.store.ledger_rows("canary")
    assert all(r.applied_hash == r.good_hash and r.applied_rev != head for r in rows)
    assert harness.store.setting(operator.ROLLBACKS) == "[]"
    said = harness.store.events(kind="operator-rollback")
    assert [e.message for e in said] == ["canary: rolled back as carol asked"]
    try:
        operator.rollback(harness.store, harness.clock.now, cell="canary")
    except operator.Refused as refused:
        assert "already runs its last good revision" in str(refused)
    else:
        raise AssertionError("a rollback of a cell on its last good state was accepted")


def test_a_service_rollback_covers_each_cell_where_it_is_unproven(harness: Harness) -> None:
    good = {c: dict(harness.backend.cells[c].services) for c in ("canary", "eu-1", "us-1")}
    _policy(harness, "        percent: 100\n", "        percent: 100\n        approval: manual\n")
    _policy(harness, "        bake: 1s\n", "        bake: 1h\n")
    _bump(harness.repo, "doubtful")
    harness.run(lambda: _steps(harness).get("canary", (None,))[0] is CellStep.HEALTHY)
    operator.rollback(harness.store, harness.clock.now, service="api")
    harness.run(lambda: not operator.pending_rollbacks(harness.store), passes=40)
    assert {c: harness.backend.cells[c].services for c in good} == good
