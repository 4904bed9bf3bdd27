"""Pure parts of the local backend and the store: the rolling-update decision, replica
health, probe thresholds, and the SQLite store's semantics. Fast; no processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellops.backends.local.probes import Prober, ProbeState, _port, run_probe
from cellops.backends.local.scaling import Decision, ReplicaView, decide
from cellops.health import Health, worst
from cellops.health.replicas import CRASH_LOOP_RESTARTS, PodView, assess
from cellops.store.migrations import MIGRATIONS
from cellops.store.planrecord import PlanRecord, PolicyRecord
from cellops.store.records import CellStep, Phase, RevisionRecord, RolloutState
from cellops.store.sqlite import SqliteStore
from tests.examples import examples

NEW, OLD, OLDER = "h-new", "h-old", "h-older"


def r(id_: str, hash_: str, ready: bool = True) -> ReplicaView:
    return ReplicaView(id_, hash_, ready)


# -- scaling.decide: table ------------------------------------------------------------------
DECIDE_CASES = [
    # (label, want, max_surge, max_unavailable, replicas, expected)
    ("fresh start", 3, 1, 0, [], Decision(3, ())),
    ("fresh start, maxSurge 0", 3, 0, 1, [], Decision(3, ())),
    ("fresh start, nothing wanted", 0, 1, 0, [], Decision(0, ())),
    ("steady state", 3, 1, 0, [r("a", NEW), r("b", NEW), r("c", NEW)], Decision(0, ())),
    (
        "steady state, one not ready yet: wait",
        2,
        1,
        0,
        [r("a", NEW), r("b", NEW, ready=False)],
        Decision(0, ()),
    ),
    ("scale up", 4, 1, 0, [r("a", NEW), r("b", NEW)], Decision(2, ())),
    ("scale up, surge does not limit fresh replicas", 5, 0, 1, [r("a", NEW)], Decision(4, ())),
    (
        "scale down stops unready replicas first",
        1,
        1,
        0,
        [r("a", NEW), r("b", NEW, ready=False), r("c", NEW)],
        Decision(0, ("b", "a")),
    ),
    (
        "scale to zero stops everything",
        0,
        1,
        0,
        [r("n1", NEW), r("o1", OLD), r("o2", OLD, ready=False)],
        Decision(0, ("n1", "o2", "o1")),
    ),
    (
        "rolling, surge 1 / unavailable 0: step 1 surges",
        3,
        1,
        0,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(1, ()),
    ),
    (
        "rolling, surge 1 / unavailable 0: the new replica is not ready yet",
        3,
        1,
        0,
        [r("n1", NEW, ready=False), r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ()),
    ),
    (
        "rolling, surge 1 / unavailable 0: new one ready, one old goes",
        3,
        1,
        0,
        [r("n1", NEW), r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ("o1",)),
    ),
    (
        "rolling, surge 1 / unavailable 0: room again, next new one",
        3,
        1,
        0,
        [r("n1", NEW), r("o2", OLD), r("o3", OLD)],
        Decision(1, ()),
    ),
    (
        "rolling, surge 1 / unavailable 0: last old goes",
        3,
        1,
        0,
        [r("n1", NEW), r("n2", NEW), r("n3", NEW), r("o3", OLD)],
        Decision(0, ("o3",)),
    ),
    (
        "rolling, surge 1 / unavailable 1: start one and stop one at once",
        3,
        1,
        1,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(1, ("o1",)),
    ),
    (
        "rolling, surge 2 / unavailable 0",
        3,
        2,
        0,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(2, ()),
    ),
    (
        "rolling, surge 0 / unavailable 1: stop first",
        3,
        0,
        1,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ("o1",)),
    ),
    (
        "rolling, surge 0 / unavailable 1: then replace",
        3,
        0,
        1,
        [r("o2", OLD), r("o3", OLD)],
        Decision(1, ()),
    ),
    (
        "rolling, surge 0 / unavailable 2",
        3,
        0,
        2,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ("o1", "o2")),
    ),
    (
        "new version never ready: the old replicas keep serving",
        3,
        1,
        0,
        [r("n1", NEW, ready=False), r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ()),
    ),
    (
        "new version never ready, unavailable 1: no further than the budget",
        3,
        1,
        1,
        [r("n1", NEW, ready=False), r("o2", OLD), r("o3", OLD)],
        Decision(1, ()),
    ),
    (
        "old replicas that are not ready cost nothing to stop",
        3,
        1,
        0,
        [r("o1", OLD, ready=False), r("o2", OLD), r("o3", OLD)],
        Decision(1, ("o1",)),
    ),
    (
        "several old versions are all old",
        2,
        1,
        0,
        [r("n1", NEW), r("n2", NEW), r("o1", OLD), r("p1", OLDER, ready=False)],
        Decision(0, ("p1", "o1")),
    ),
    (
        "too many old replicas: no surge, trim old down to the floor",
        1,
        1,
        0,
        [r("o1", OLD), r("o2", OLD), r("o3", OLD)],
        Decision(0, ("o1", "o2")),
    ),
]


@pytest.mark.parametrize(
    ("want", "surge", "unavailable", "replicas", "expected"),
    [case[1:] for case in DECIDE_CASES],
    ids=[case[0] for case in DECIDE_CASES],
)
def test_decide(
    want: int, surge: int, unavailable: int, replicas: list[ReplicaView], expected: Decision
) -> None:
    assert decide(NEW, want, surge, unavailable, replicas) == expected


def test_decide_ignores_the_order_replicas_come_in() -> None:
    replicas = [r("o3", OLD), r("n1", NEW), r("o1", OLD), r("o2", OLD, ready=False)]
    expected = decide(NEW, 3, 1, 0, replicas)
    assert decide(NEW, 3, 1, 0, list(reversed(replicas))) == expected
    # one new replica, three old: no room to surge; only the unready old one goes
    assert expected == Decision(0, ("o2",))


# -- scaling.decide: property -----------------------------------------------------------------
@st.composite
def rollouts(draw: st.DrawFn) -> tuple[int, int, int, list[ReplicaView]]:
    want = draw(st.integers(0, 6))
    surge = draw(st.integers(0, 3))
    unavailable = draw(st.integers(0 if surge else 1, 3))  # the spec forbids both 0
    replicas = [
        ReplicaView(f"x{i}", draw(st.sampled_from([NEW, OLD, OLDER])), draw(st.booleans()))
        for i in range(draw(st.integers(0, 8)))
    ]
    return want, surge, unavailable, replicas


@settings(max_examples=examples(300), deadline=None)
@given(rollouts(), st.data())
def test_decide_converges_and_keeps_availability(
    setup: tuple[int, int, int, list[ReplicaView]], data: st.DataObject
) -> None:
    want, surge, unavailable, replicas = setup
    floor = want - unavailable
    live = {v.id: v for v in replicas}
    serial = 0
    for step in range(60):
        views = list(live.values())
        decision = decide(NEW, want, surge, unavailable, views)
        assert decision.start >= 0
        assert len(set(decision.stop)) == len(decision.stop)
        assert set(decision.stop) <= set(live)
        ready_before = sum(v.ready for v in views)
        ready_after = ready_before - sum(live[i].ready for i in decision.stop)
        # availability never drops below the floor because of this decision
        assert ready_after >= min(ready_before, floor)
        stopped_ready_old = [i for i in decision.stop if live[i].ready and live[i].hash != NEW]
        if stopped_ready_old:
            assert ready_after >= floor, (step, views, decision)
        # starting new replicas never goes past want + maxSurge
        if decision.start:
            assert len(views) + decision.start <= want + surge
            assert sum(v.hash == NEW for v in views) + decision.start <= want
        for replica_id in decision.stop:
            del live[replica_id]
        for _ in range(decision.start):
            serial += 1
            live[f"n{serial:03d}"] = ReplicaView(f"n{serial:03d}", NEW, False)
        # some new replicas become ready; after a while, all of them do
        for replica_id, view in list(live.items()):
            if view.hash == NEW and not view.ready and (step >= 20 or data.draw(st.booleans())):
                live[replica_id] = ReplicaView(replica_id, NEW, True)
        if not decision.start and not decision.stop and step >= 21:
            break
    final = list(live.values())
    assert len(final) == want
    assert all(v.hash == NEW and v.ready for v in final)
    assert decide(NEW, want, surge, unavailable, final) == Decision(0, ())


# -- health ---------------------------------------------------------------------------------
def pod(hash_: str = NEW, ready: bool = True, restarts: int = 0, waiting: bool = False) -> PodView:
    return PodView(hash_, ready, restarts, waiting)


@pytest.mark.parametrize(
    ("want", "pods", "health", "reason", "running"),
    [
        (2, [pod(), pod()], Health.HEALTHY, "", NEW),
        (0, [], Health.HEALTHY, "", NEW),
        (2, [], Health.PROGRESSING, "0/2 ready at the desired version, 0 old", NEW),
        (2, [pod(), pod(ready=False)], Health.PROGRESSING, "1/2 ready", NEW),
        (2, [pod(), pod(), pod(OLD)], Health.PROGRESSING, "2/2 ready", None),
        (2, [pod(OLD), pod(OLD)], Health.PROGRESSING, "0/2 ready", OLD),
        (2, [pod(), pod(), pod()], Health.PROGRESSING, "3/2 ready", NEW),
        (
            2,
            [pod(), pod(ready=False, restarts=CRASH_LOOP_RESTARTS, waiting=True)],
            Health.DEGRADED,
            "CrashLoopBackOff: 1 replica(s) restarting",
            NEW,
        ),
        (
            1,
            [pod(ready=False, restarts=CRASH_LOOP_RESTARTS - 1, waiting=True)],
            Health.PROGRESSING,
            "0/1 ready",
            NEW,
        ),
        # restarted often but ready now: not a crash loop
        (1, [pod(restarts=CRASH_LOOP_RESTARTS + 5)], Health.HEALTHY, "", NEW),
        # an old version crash-looping is the past, not a failure of the desired one
        (
            1,
            [pod(), pod(OLD, ready=False, restarts=9, waiting=True)],
            Health.PROGRESSING,
            "1/1 ready at the desired version, 1 old",
            None,
        ),
    ],
)
def test_assess(
    want: int, pods: list[PodView], health: Health, reason: str, running: str | None
) -> None:
    got_health, got_reason, got_running = assess(want, NEW, pods)
    assert got_health is health
    assert got_reason.startswith(reason)
    assert got_running == running


def test_health_order_and_worst() -> None:
    order = [Health.HEALTHY, Health.PROGRESSING, Health.UNKNOWN, Health.MISSING, Health.DEGRADED]
    for i, better in enumerate(order):
        for worse in order[i + 1 :]:
            assert worse.is_worse(better)
            assert not better.is_worse(worse)
        assert not better.is_worse(better)
    assert worst([]) is Health.HEALTHY
    assert worst([Health.HEALTHY, Health.DEGRADED, Health.PROGRESSING]) is Health.DEGRADED
    assert worst([Health.PROGRESSING, Health.UNKNOWN]) is Health.UNKNOWN
    assert worst(iter([Health.MISSING])) is Health.MISSING


@given(st.lists(st.sampled_from(list(Health))))
def test_worst_is_never_better_than_any(healths: list[Health]) -> None:
    result = worst(healths)
    assert all(not h.is_worse(result) for h in healths)
    assert result in healths or (not healths and result is Health.HEALTHY)


# -- probes ---------------------------------------------------------------------------------
def test_probe_defaults_follow_kubernetes() -> None:
    state = ProbeState({"http": {"port": 80}}, started_at=100.0)
    assert state.due(100.0)
    state.record(False, 100.0)
    assert state.next_at == 110.0  # periodSeconds 10
    assert not state.due(109.9)
    assert state.due(110.0)
    state.record(False, 110.0)
    assert state.passed is None  # failureThreshold 3
    state.record(False, 120.0)
    assert state.passed is False
    state.record(True, 130.0)  # successThreshold 1
    assert state.passed is True
    assert (state.successes, state.failures) == (1, 0)


def test_probe_initial_delay_and_period() -> None:
    state = ProbeState({"initialDelaySeconds": 5, "periodSeconds": 2}, started_at=100.0)
    assert not state.due(100.0)
    assert not state.due(104.99)
    assert state.due(105.0)
    state.record(True, 105.0)
    assert not state.due(106.0)
    assert state.due(107.0)
    state.pending = Future()  # a probe in flight is never run twice
    assert not state.due(200.0)


def test_probe_thresholds_need_consecutive_results() -> None:
    state = ProbeState(
        {"successThreshold": 2, "failureThreshold": 2, "periodSeconds": 1}, started_at=0.0
    )
    state.record(True, 1.0)
    assert state.passed is None
    state.record(False, 2.0)  # breaks the run of successes
    assert (state.successes, state.failures, state.passed) == (0, 1, None)
    state.record(True, 3.0)
    assert state.passed is None
    state.record(True, 4.0)
    assert state.passed is True
    state.record(False, 5.0)  # one failure does not undo a pass
    assert state.passed is True
    state.record(True, 6.0)
    state.record(False, 7.0)
    assert state.passed is True  # the failures were not consecutive
    state.record(False, 8.0)
    assert state.passed is False
    state.record(True, 9.0)  # one success does not undo a failure below the threshold
    assert state.passed is False
    state.record(True, 10.0)
    assert state.passed is True


def test_prober_folds_in_a_finished_result_and_waits_for_the_period(tmp_path: Path) -> None:
    prober = Prober(workers=1)
    try:
        state = ProbeState({"exec": {"command": ["true"]}, "periodSeconds": 10}, started_at=0.0)
        done: Future[bool] = Future()
        done.set_result(True)
        state.pending = done
        prober.tick(state, 50.0, "127.0.0.1", {}, tmp_path)
        assert state.passed is True
        assert state.next_at == 60.0
        assert state.pending is None  # not due again before 60
        prober.tick(state, 60.0, "127.0.0.1", {}, tmp_path)
        assert state.pending is not None
        assert state.pending.result(timeout=10) is True
    finally:
        prober.close()


def test_exec_probe_runs_in_the_replica_folder(tmp_path: Path) -> None:
    probe = {"exec": {"command": ["test", "-f", "ready.flag"]}}
    assert run_probe(probe, "127.0.0.1", {}, tmp_path) is False
    (tmp_path / "ready.flag").write_text("")
    assert run_probe(probe, "127.0.0.1", {}, tmp_path) is True
    assert run_probe({"exec": {"command": ["no-such-command-xyz"]}}, "h", {}, tmp_path) is False
    assert run_probe({"unknown": {}}, "127.0.0.1", {}, tmp_path) is False


def test_probe_ports_map_to_the_replica_ports() -> None:
    ports = {"http": 20001, "#8080": 20001, "admin": 20002, "#9090": 20002}
    assert _port("http", ports) == 20001
    assert _port(8080, ports) == 20001  # a declared number means that port of the replica
    assert _port(9090, ports) == 20002
    assert _port(7777, ports) == 7777  # not declared: taken literally


# -- store ----------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state" / "cellops.db")
    yield s
    s.close()


def _tables(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    finally:
        db.close()


def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db.sqlite"
    first = SqliteStore(path)
    assert first.schema_version == len(MIGRATIONS)
    first.set_setting("k", "v")
    first.close()
    tables = _tables(path)
    assert {"revisions", "ledger", "cells", "rollouts", "rollout_cells", "events"} <= set(tables)
    again = SqliteStore(path)  # re-opening: nothing to migrate, nothing lost
    try:
        assert again.schema_version == len(MIGRATIONS)
        assert again.setting("k") == "v"
        assert _tables(path) == tables
    finally:
        again.close()


def test_settings(store: SqliteStore) -> None:
    assert store.setting("missing") is None
    store.set_setting("a", "1")
    store.set_setting("a", "2")
    assert store.setting("a") == "2"


def test_revisions(store: SqliteStore) -> None:
    problems: list[dict[str, object]] = [{"path": "x", "message": "bad"}]
    store.record_revision(RevisionRecord("r1", True, "first", [], 10.0))
    store.record_revision(RevisionRecord("r2", False, "second", problems, 20.0))
    store.record_revision(RevisionRecord("r1", False, "changed?", [], 30.0))  # ignored
    assert store.revision("r1") == RevisionRecord("r1", True, "first", [], 10.0)
    assert store.revision("r2") == RevisionRecord("r2", False, "second", problems, 20.0)
    assert store.revision("nope") is None
    assert [x.id for x in store.revisions()] == ["r2", "r1"]
    assert [x.id for x in store.revisions(limit=1)] == ["r2"]


def _applied(store: SqliteStore, cell: str) -> dict[str, tuple[str | None, str | None]]:
    return {r.service: (r.applied_hash, r.good_hash) for r in store.ledger_rows(cell)}


def test_ledger_good_and_restore(store: SqliteStore) -> None:
    store.set_applied("eu-1", "api", rev="r1", hash_="a1", depends_on=("store",), now=1.0)
    store.set_applied("eu-1", "store", rev="r1", hash_="s1", depends_on=(), now=1.0)
    store.set_applied("us-1", "api", rev="r1", hash_="a1", depends_on=(), now=1.0)
    store.set_good("eu-1", now=2.0)
    rows = {r.service: r for r in store.ledger_rows("eu-1")}
    assert rows["api"].good_rev == "r1" and rows["api"].good_hash == "a1"
    assert rows["api"].depends_on == ("store",)
    assert rows["api"].hash == "a1"
    assert store.ledger_rows("us-1")[0].good_hash is None  # only the cell named
    store.set_healthy("eu-1", "api", "r1", now=2.5)
    assert {r.service: r for r in store.ledger_rows("eu-1")}["api"].healthy_rev == "r1"

    # r2: api changes, store is deleted, cache is added
    store.set_applied("eu-1", "api", rev="r2", hash_="a2", depends_on=(), now=3.0)
    store.set_applied("eu-1", "store", rev="r2", hash_=None, depends_on=(), now=3.0)
    store.set_applied("eu-1", "cache", rev="r2", hash_="c2", depends_on=(), now=3.0)
    # a deleted service is kept (for a rollback) but is not part of what was applied
    assert _applied(store, "eu-1") == {
        "api": ("a2", "a1"),
        "cache": ("c2", None),
        "store": (None, "s1"),
    }
    assert set(store.ledger()["eu-1"]) == {"api", "cache"}
    assert store.ledger()["eu-1"]["api"].hash == "a2"

    store.restore_good("eu-1", now=4.0)  # roll back: r1 again
    assert _applied(store, "eu-1") == {"api": ("a1", "a1"), "store": ("s1", "s1")}
    assert {r.applied_rev for r in store.ledger_rows("eu-1")} == {"r1"}
    assert _applied(store, "us-1") == {"api": ("a1", None)}  # untouched

    # r2 again, this time it becomes good: the deleted row goes for good
    store.set_applied("eu-1", "api", rev="r2", hash_="a2", depends_on=(), now=5.0)
    store.set_applied("eu-1", "store", rev="r2", hash_=None, depends_on=(), now=5.0)
    store.set_good("eu-1", now=6.0)
    assert _applied(store, "eu-1") == {"api": ("a2", "a2")}
    store.restore_good("eu-1", now=7.0)
    assert _applied(store, "eu-1") == {"api": ("a2", "a2")}

    store.forget_cell("eu-1")
    assert store.ledger_rows("eu-1") == []
    assert set(store.ledger()) == {"us-1"}


def test_restore_good_without_any_good_state_empties_the_cell(store: SqliteStore) -> None:
    store.set_applied("eu-1", "api", rev="r1", hash_="a1", depends_on=(), now=1.0)
    store.restore_good("eu-1", now=2.0)
    assert store.ledger_rows("eu-1") == []


def test_cell_record(store: SqliteStore) -> None:
    assert store.cell_record("eu-1") == (None, 0)
    store.set_cell_record("eu-1", "doc1", 3)
    store.set_cell_record("eu-1", "doc2", 4)
    assert store.cell_record("eu-1") == ("doc2", 4)
    store.forget_cell("eu-1")
    assert store.cell_record("eu-1") == (None, 0)


def test_rollouts_and_cell_steps(store: SqliteStore) -> None:
    assert store.active_rollout() is None
    plan = PlanRecord.from_json(
        json.dumps(
            {
                "waves": [
                    {"name": "canary", "canary": True, "cells": [{"cell": "canary"}]},
                    {"name": "rest", "cells": [{"cell": "eu-1"}, {"cell": "us-1"}]},
                ],
                "policy": {"progressDeadline": 60, "failureBudget": 1, "onFailure": "halt"},
            }
        )
    )
    assert PlanRecord.from_json(plan.to_json()) == plan
    assert plan.policy == PolicyRecord(60.0, 1, "halt", None)
    first = store.create_rollout("r1", None, plan, now=10.0)
    rollout = store.rollout(first)
    assert rollout is not None
    assert (rollout.revision, rollout.base, rollout.state) == ("r1", None, RolloutState.RUNNING)
    assert (rollout.wave, rollout.phase, rollout.failures, rollout.paused) == (
        0,
        Phase.APPLY,
        0,
        False,
    )
    assert rollout.plan == plan and rollout.plan.is_canary(0) and not rollout.plan.is_canary(1)
    assert rollout.active
    assert (rollout.created_at, rollout.updated_at, rollout.phase_started) == (10.0, 10.0, 10.0)
    assert store.cell_steps(first) == {
        "canary": (0, CellStep.PENDING, ""),
        "eu-1": (1, CellStep.PENDING, ""),
        "us-1": (1, CellStep.PENDING, ""),
    }

    store.set_cell_step(first, "canary", CellStep.FAILED, "probe failed", now=11.0)
    assert store.cell_steps(first)["canary"] == (0, CellStep.FAILED, "probe failed")
    store.update_rollout(
        first, 12.0, state=RolloutState.HALTED, wave=1, phase=Phase.BAKE, paused=True, reason="x"
    )
    halted = store.rollout(first)
    assert halted is not None
    assert (halted.state, halted.wave, halted.phase, halted.paused, halted.reason) == (
        RolloutState.HALTED,
        1,
        Phase.BAKE,
        True,
        "x",
    )
    assert halted.updated_at == 12.0 and not halted.active
    assert store.active_rollout() is None
    with pytest.raises(AssertionError):
        store.update_rollout(first, 13.0, revision="evil")

    # an ended rollout is never overwritten by a guarded command (abort, pause)
    assert not store.update_rollout(
        first, 14.0, if_state=RolloutState.RUNNING, state=RolloutState.ABORTED
    )
    assert store.rollout(first).state is RolloutState.HALTED  # type: ignore[union-attr]

    legacy = PlanRecord.from_json('[{"name": "w", "cells": [{"cell": "eu-1"}]}]')
    assert legacy.policy is None and legacy.waves[0].cell_names == ["eu-1"]
    second = store.create_rollout("r2", "r1", legacy, now=20.0)
    assert second > first
    active = store.active_rollout()
    assert active is not None and active.id == second and active.base == "r1"
    assert [x.id for x in store.rollouts()] == [second, first]
    assert store.rollout(999) is None
    assert store.cell_steps(second) == {"eu-1": (0, CellStep.PENDING, "")}


def test_events_order_and_after(store: SqliteStore) -> None:
    for i in range(5):
        store.add_event(
            100.0 + i, "apply" if i % 2 == 0 else "health", f"m{i}", cell="eu-1", rollout=i
        )
    events = store.events()
    assert [e.message for e in events] == ["m0", "m1", "m2", "m3", "m4"]  # oldest first
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert events[0].cell == "eu-1" and events[0].service is None and events[0].rollout == 0
    assert [e.message for e in store.events(after=ids[2])] == ["m3", "m4"]
    assert [e.message for e in store.events(limit=2)] == ["m3", "m4"]  # the latest ones
    assert [e.message for e in store.events(kind="apply")] == ["m0", "m2", "m4"]
    assert [e.message for e in store.events(kind="apply", after=ids[0])] == ["m2", "m4"]
    assert store.events(after=ids[-1]) == []


def test_transaction_rollback_keeps_nothing(store: SqliteStore) -> None:
    store.set_setting("before", "1")
    with pytest.raises(RuntimeError), store.transaction():
        store.set_setting("inside", "1")
        store.add_event(1.0, "x", "inside")
        store.set_applied("eu-1", "api", rev="r", hash_="h", depends_on=(), now=1.0)
        with store.transaction():  # nested: part of the outer one
            store.create_rollout(
                "r",
                None,
                PlanRecord.from_json('[{"name": "w", "cells": [{"cell": "eu-1"}]}]'),
                now=1.0,
            )
        raise RuntimeError("boom")
    assert store.setting("inside") is None
    assert store.events() == []
    assert store.ledger_rows() == []
    assert store.rollouts() == []
    assert store.setting("before") == "1"
    # the store is usable afterwards, and a block that succeeds keeps everything
    with store.transaction():
        store.set_setting("after", "1")
        store.add_event(2.0, "x", "after")
    assert store.setting("after") == "1"
    assert [e.message for e in store.events()] == ["after"]


def test_a_failing_statement_inside_a_transaction_rolls_back_the_block(
    store: SqliteStore,
) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.set_setting("inside", "1")
        store.add_event(1.0, None, "kind is NOT NULL")  # type: ignore[arg-type]
    assert store.setting("inside") is None
    store.set_setting("later", "1")
    assert store.setting("later") == "1"
