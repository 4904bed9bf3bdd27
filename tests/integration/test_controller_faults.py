"""The controller under faults, for real: `cellops up` as a subprocess, killed with SIGKILL
at seeded random points of multi-wave rollouts; replicas and cell agents killed under it; a
release that crashes at start; SIGTERM.

One fleet serves the whole module (4 local cells: a canary, then 3 cells one at a time;
two services: `web` without probes, `api` with an http readiness probe). Each test leaves
it settled: no rollout running, every cell healthy.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.backends.local.observe import STALE_AFTER
from cellops.controller.reconcile import Settings
from cellops.store.records import CellStep, RolloutState
from cellops.wiring import wire
from tests.integration.controller_harness import (
    Fleet,
    ServiceDef,
    applied_order,
    count,
    http_get,
    pid_alive,
    plan_cells,
    wait_for,
    wave_name,
)

pytestmark = pytest.mark.slow

WEB = ServiceDef("web", 18080)
API = ServiceDef("api", 18081, probes=True)
# 20 seeded trials in the suite (CELLOPS_FAULT_TRIALS for more; bench/faults.py kills at
# fail points and random moments of good and bad releases, and checks more invariants)
SEEDS = range(int(os.environ.get("CELLOPS_FAULT_TRIALS", "20")))
COMPLETED = RolloutState.COMPLETED


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("faults")
    # cell names unique to this run: their addresses (and so the service ports on them)
    # never meet those of another copy of the suite running at the same time
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:5]
    fleet = Fleet(root, f"f{tag}", [WEB, API])
    try:
        fleet.start()
        fleet.wait_rollout(fleet.head, COMPLETED, timeout=60)
        fleet.wait_serving("web", "v1")
        fleet.wait_serving("api", "v1")
        yield fleet
    finally:
        leftovers = fleet.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


@pytest.fixture
def running(fleet: Fleet) -> Fleet:
    """The module's fleet with its controller running and no rollout in flight."""
    if not fleet.controller_running:
        fleet.start()
    active = fleet.store.active_rollout()
    if active is not None:
        fleet.wait_rollout(active.revision, COMPLETED)
    return fleet


@pytest.fixture(scope="module")
def kill_window(fleet: Fleet) -> float:
    """Seconds from starting a controller to the end of a web release's rollout, measured
    once without faults: the trials kill the controller anywhere in that window."""
    fleet.kill(signal.SIGTERM)
    revision = fleet.release("web", "calibration")
    started = time.monotonic()
    fleet.start(wait=False)
    fleet.wait_rollout(revision, COMPLETED)
    window = time.monotonic() - started
    check_completed_rollout(fleet, revision, "web", "calibration", "calibration run")
    return window


def check_completed_rollout(
    fleet: Fleet, revision: str, service: str, version: str, where: str
) -> None:
    """The invariants of a rollout that was interrupted any number of times."""
    rollouts = fleet.rollouts_of(revision)
    assert len(rollouts) == 1, f"{where}: {len(rollouts)} rollouts of {revision[:12]}"
    rollout = rollouts[0]
    assert rollout.state is COMPLETED, f"{where}: {rollout.state} {rollout.reason}"
    record = fleet.store.revision(revision)
    assert record is not None and record.accepted, f"{where}: revision {record}"

    waves = plan_cells(rollout)
    planned = [cell for wave in waves for cell in wave]
    canary = f"{fleet.prefix}-canary"
    assert waves[0] == [canary], f"{where}: plan {waves}"
    assert sorted(planned) == sorted(fleet.cells), f"{where}: plan {waves}"
    assert all(len(wave) == 1 for wave in waves), f"{where}: maxConcurrent 1, plan {waves}"

    events = fleet.events(rollout=rollout.id)
    story = f"{where}\n{fleet.describe(60)}"
    # every planned cell given the revision exactly once: never twice, none skipped
    assert count(events, "applied") == collections.Counter(planned), story
    assert count(events, "healthy") == collections.Counter(planned), story
    kinds = collections.Counter(e.kind for e in events)
    assert kinds["rollout-started"] == 1, story
    assert kinds["rollout-completed"] == 1, story
    assert kinds["wave-done"] == len(waves), story
    for failure in ("cell-failed", "rolled-back", "rollout-halted", "rollout-superseded"):
        assert kinds[failure] == 0, story

    # waves in order: a wave's cells are applied only after the previous wave's cells were
    # all healthy and the wave was done (event ids are the store's total order)
    applied = {e.cell: e.id for e in events if e.kind == "applied"}
    healthy = {e.cell: e.id for e in events if e.kind == "healthy"}
    done = [e for e in events if e.kind == "wave-done"]
    started = next(e.id for e in events if e.kind == "rollout-started")
    completed = next(e.id for e in events if e.kind == "rollout-completed")
    for index, cells in enumerate(waves):
        assert done[index].message == f"wave {wave_name(rollout, index)} done", story
        for cell in cells:
            assert started < applied[cell] < healthy[cell] < done[index].id, story
            if index > 0:
                assert applied[cell] > done[index - 1].id, story
                assert all(healthy[c] < applied[cell] for c in waves[index - 1]), story
    assert done[-1].id < completed, story

    # the ledger: every cell runs the revision and holds it as its last good state
    for cell, row in fleet.ledger(service).items():
        assert (row.applied_rev, row.healthy_rev, row.good_rev) == (revision,) * 3, (
            f"{where}: {cell} ledger {row}"
        )
    assert set(fleet.ledger(service)) == set(fleet.cells)
    # and the replicas really serve it, through each cell's service port
    fleet.wait_serving(service, version)


def _moment(fleet: Fleet, revision: str) -> str:
    """Where the rollout of `revision` stood when the controller died."""
    rollout = fleet.rollout_of(revision)
    if rollout is None:
        seen = fleet.store.setting("source.last_seen") == revision
        return f"no rollout yet (source.last_seen {'=' if seen else '!='} the commit)"
    steps = fleet.store.cell_steps(rollout.id)
    cells = ",".join(f"{c}:{s}" for c, (_, s, _) in sorted(steps.items()))
    return f"{rollout.state} wave {rollout.wave} {rollout.phase} [{cells}]"


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_points_of_a_rollout(fleet: Fleet, kill_window: float, seed: int) -> None:
    rng = random.Random(seed)
    fleet.kill(signal.SIGTERM)  # each trial runs its own controllers
    version = f"k{seed}"
    revision = fleet.release("web", version)
    kills: list[str] = []
    for _ in range(2 if rng.random() < 0.5 else 1):
        fleet.start(wait=False)
        delay = rng.uniform(0, kill_window)
        time.sleep(delay)
        fleet.kill(signal.SIGKILL)
        kills.append(f"SIGKILL after {delay:.2f}s: {_moment(fleet, revision)}")
    where = f"seed {seed} (window {kill_window:.2f}s): " + "; ".join(kills)
    print(where)  # shown with -s or -rP: which moments of the rollout the kills hit
    fleet.start()
    try:
        fleet.wait_rollout(revision, COMPLETED, timeout=40)
    except AssertionError as exc:
        raise AssertionError(f"{where}\n{exc}") from None
    check_completed_rollout(fleet, revision, "web", version, where)
    # the other service was re-applied unchanged: still the same, still serving
    fleet.wait_serving("api", fleet.versions["api"])


def test_a_controller_killed_right_after_noting_a_new_commit_still_rolls_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash point the random trials almost never hit (a window of ~10 ms), placed
    exactly: the controller has stored the new head as `source.last_seen` and dies before
    the commit is judged and its rollout recorded. The next controller must still judge
    it and roll it out; a commit is never lost to a crash."""
    fleet = Fleet(tmp_path, "lsn", [WEB])  # only the repo: no controller, no cells run

    class Died(BaseException):
        """The process ends here (SIGKILL): nothing after this point happens."""

    first = wire(fleet.repo.path, fleet.state, Settings())

    def dies(head: str, now: float) -> None:
        raise Died

    monkeypatch.setattr(first.reconciler, "consider", dies)
    with pytest.raises(Died):
        first.reconciler.check_source(time.time())
    first.close()

    second = wire(fleet.repo.path, fleet.state, Settings())  # a new controller process
    try:
        second.reconciler.check_source(time.time())
        record = second.store.revision(fleet.head)
        assert record is not None and record.accepted, (
            "the commit was never judged: source.last_seen ="
            f" {second.store.setting('source.last_seen')}, fleet.current ="
            f" {second.store.setting('fleet.current')}"
        )
        assert [r.revision for r in second.store.rollouts()] == [fleet.head]
    finally:
        second.close()


def test_killed_replica_is_restarted_and_recorded_as_drift(running: Fleet) -> None:
    fleet = running
    cell = f"{fleet.prefix}-b2"
    before = fleet.replica_pids()
    rollouts = len(fleet.store.rollouts(limit=1000))
    [pod] = fleet.pods(cell, "web")
    mark = fleet.last_event_id()
    os.kill(int(pod["pid"]), signal.SIGKILL)

    drift = wait_for(
        f"a drift event for {cell}",
        lambda: fleet.events(after=mark, kind="drift", cell=cell),
        timeout=15,
    )
    assert drift[0].service == "web", drift
    assert pod["id"] in drift[0].message and "exited" in drift[0].message, drift[0].message

    def restarted() -> list[dict[str, object]] | None:
        pods = fleet.pods(cell, "web")
        fresh = [p for p in pods if p["pid"] != pod["pid"] and p["state"] == "running"]
        return pods if fresh and pid_alive(int(str(fresh[0]["pid"]))) else None

    [again] = wait_for(f"the web replica of {cell} to run again", restarted, timeout=15)
    assert again["id"] == pod["id"] and int(str(again["restarts"])) >= 1
    fleet.wait_serving("web", fleet.versions["web"], cells=[cell])
    # nothing else was touched: no rollout, every other replica the same process
    after = fleet.replica_pids()
    for key, pids in before.items():
        if key != (cell, "web"):
            assert after[key] == pids, key
    assert len(fleet.store.rollouts(limit=1000)) == rollouts
    others = [e for e in fleet.events(after=mark, kind="drift") if e.cell != cell]
    assert not others, others


def test_killed_agent_is_restarted_while_its_replicas_keep_serving(running: Fleet) -> None:
    fleet = running
    cell = f"{fleet.prefix}-a1"
    address = fleet.address(cell)
    before = fleet.replica_pids()
    agents = {c: fleet.agent_pid(c) for c in fleet.cells}
    pods = {s: fleet.pods(cell, s) for s in fleet.services}
    assert all(len(p) == 1 for p in pods.values()), pods
    mark = fleet.last_event_id()
    os.kill(agents[cell], signal.SIGKILL)
    wait_for("the agent to die", lambda: not pid_alive(agents[cell]), timeout=5)

    # meanwhile the replicas keep serving on their own ports (the cell's service ports are
    # the agent's proxy, gone with it until the agent is back)
    for service, [pod] in pods.items():
        assert pid_alive(int(pod["pid"])), (service, pod)
        port = int(pod["ports"]["http"])
        assert http_get(address, port) == fleet.versions[service], (service, pod)

    restarted = wait_for(
        f"an agent-restarted event for {cell}",
        lambda: fleet.events(after=mark, kind="agent-restarted", cell=cell),
        timeout=15,
    )
    assert len(restarted) == 1, restarted
    new_agent = wait_for(
        "a new agent",
        lambda: (p := fleet.agent_pid(cell)) != agents[cell] and pid_alive(p) and p,
        timeout=10,
    )
    for service, [pod] in pods.items():  # still the same replica, still answering
        assert http_get(address, int(pod["ports"]["http"])) == fleet.versions[service]
        fleet.wait_serving(service, fleet.versions[service], cells=[cell])

    # the new agent adopted the replicas (same processes) and the other cells are untouched
    assert fleet.replica_pids() == before
    assert {c: fleet.agent_pid(c) for c in fleet.cells} == {**agents, cell: new_agent}
    assert all(pid_alive(p) for pids in fleet.replica_pids().values() for p in pids)
    touched = [
        e
        for e in fleet.events(after=mark)
        if e.kind in ("agent-restarted", "drift", "applied") and e.cell != cell
    ]
    assert not touched, touched


def test_a_hung_agent_is_not_reported_as_restarted_unless_it_is(running: Fleet) -> None:
    """An agent that stops reporting (here: SIGSTOP, longer than the staleness limit) is
    unreachable. Whatever the controller does about it, an `agent-restarted` event must
    mean that the agent was restarted."""
    fleet = running
    cell = f"{fleet.prefix}-b3"
    agent = fleet.agent_pid(cell)
    mark = fleet.last_event_id()
    os.kill(agent, signal.SIGSTOP)
    try:
        time.sleep(STALE_AFTER + 2.5)
    finally:
        os.kill(agent, signal.SIGCONT)
    claims = fleet.events(after=mark, kind="agent-restarted", cell=cell)
    replaced = fleet.agent_pid(cell) != agent and not pid_alive(agent)
    assert replaced or not claims, (
        f"{len(claims)} agent-restarted event(s) for {cell}, yet its agent (pid {agent})"
        f" was never restarted; the first says: {claims[0].message!r}"
    )
    for service, version in fleet.versions.items():
        fleet.wait_serving(service, version, cells=[cell])


def test_bad_release_stops_at_the_canary_and_is_rolled_back(running: Fleet) -> None:
    fleet = running
    canary = f"{fleet.prefix}-canary"
    others = [c for c in fleet.cells if c != canary]
    good = {s: fleet.versions[s] for s in fleet.services}
    good_rows = fleet.ledger("api")
    desired = {c: fleet.desired_file(c).read_bytes() for c in others}
    mark = fleet.last_event_id()

    revision = fleet.release("api", "v-bad", crash=True)
    rollout = fleet.wait_rollout(revision, RolloutState.HALTED, timeout=45)
    wait_for(
        "the canary to be healthy on its last good revision again",
        lambda: fleet.events(after=mark, kind="recovered", cell=canary),
        timeout=30,
    )
    events = fleet.events(rollout=rollout.id)
    story = fleet.describe(40)
    # exactly one cell was given the revision: the canary; it failed and went back
    assert applied_order(events) == [canary], story
    assert count(events, "cell-failed") == {canary: 1}, story
    assert count(events, "rolled-back") == {canary: 1}, story
    kinds = collections.Counter(e.kind for e in events)
    assert kinds["rollout-halted"] == 1 and kinds["rollout-completed"] == 0, story
    assert canary in rollout.reason and "failed" in rollout.reason, rollout.reason
    steps = fleet.store.cell_steps(rollout.id)
    assert steps[canary][1] is CellStep.RECOVERED, steps
    assert all(steps[c][1] is CellStep.SKIPPED for c in others), steps
    # no other cell heard of it: no applied event at all, desired state untouched
    assert not [e for e in fleet.events(after=mark, kind="applied") if e.cell != canary]
    for cell in others:
        assert fleet.desired_file(cell).read_bytes() == desired[cell], cell
    # the ledger: every cell (the canary too) is back on its last good revision
    rows = fleet.ledger("api")
    for cell, row in rows.items():
        assert row.applied_rev == row.good_rev == good_rows[cell].good_rev != revision, row
    # and every cell, the canary included, serves the previous versions
    for service, version in good.items():
        fleet.wait_serving(service, version)
    # the halted rollout stays halted: nothing else happens to the other cells
    time.sleep(1.0)
    assert fleet.rollout_of(revision).state is RolloutState.HALTED  # type: ignore[union-attr]
    assert not [e for e in fleet.events(after=mark, kind="applied") if e.cell != canary]


@pytest.mark.parametrize(("point", "failed"), [("apply.local:1", 0), ("apply.local:2", 1)])
def test_a_controller_killed_inside_a_bad_release_rolls_back_once(
    running: Fleet, point: str, failed: int
) -> None:
    """SIGKILL at an exact point of a bad release (the fail-point hook): right after the
    canary's desired state was written, before the apply was recorded (`apply.local:1`),
    or right after the rollback wrote its good state back, before recording it
    (`apply.local:2`). The next controller applies and rolls the canary back exactly once,
    halts, and every cell serves its good versions with the same replicas."""
    fleet = running
    canary = f"{fleet.prefix}-canary"
    good = dict(fleet.versions)
    pids = fleet.replica_pids()
    fleet.stop_controller()
    revision = fleet.release("api", f"bad-at-{point}", crash=True)
    died = fleet.start(wait=False, env={"CELLOPS_FAILPOINT": point})
    assert died.wait(timeout=60) == -signal.SIGKILL, fleet.controller_log()
    killed_at = fleet.rollout_of(revision)
    assert killed_at is not None and killed_at.state is RolloutState.RUNNING, fleet.describe()
    assert count(fleet.events(rollout=killed_at.id), "cell-failed")[canary] == failed

    fleet.start()
    rollout = fleet.wait_rollout(revision, RolloutState.HALTED, timeout=45)
    wait_for(
        "the canary to be seen recovered",
        lambda: fleet.events(rollout=rollout.id, kind="recovered", cell=canary),
        timeout=30,
    )
    events = fleet.events(rollout=rollout.id)
    story = fleet.describe(30)
    assert applied_order(events) == [canary], story
    assert count(events, "cell-failed") == {canary: 1}, story
    assert count(events, "rolled-back") == {canary: 1}, story
    for service, version in good.items():
        fleet.wait_serving(service, version)
    for row in fleet.ledger("api").values():
        assert row.applied_hash is not None and row.applied_hash == row.good_hash, row
    after = fleet.replica_pids()
    assert {k: v for k, v in after.items() if k != (canary, "api")} == {
        k: v for k, v in pids.items() if k != (canary, "api")
    }, "only the canary's api replica may have changed"
    fleet.release("api", good["api"])  # the good app again: no cell changes


def test_sigterm_stops_the_controller_cleanly_and_workloads_keep_running(
    running: Fleet,
) -> None:
    fleet = running
    record = fleet.record()
    assert record.get("pid") == fleet.controller.pid  # type: ignore[union-attr]
    pids = fleet.replica_pids()
    agents = {c: fleet.agent_pid(c) for c in fleet.cells}

    started = time.monotonic()
    os.kill(int(record["pid"]), signal.SIGTERM)
    status = fleet.controller.wait(timeout=5)  # type: ignore[union-attr]
    elapsed = time.monotonic() - started
    assert status == 0, fleet.controller_log()
    assert elapsed < 5
    assert not (fleet.state / "controller.json").exists()

    # the cells live on without it: same agents, same replicas, still answering
    time.sleep(1.0)
    assert all(pid_alive(p) for p in agents.values()), agents
    assert fleet.replica_pids() == pids
    assert all(pid_alive(p) for group in pids.values() for p in group)
    for service, version in fleet.versions.items():
        fleet.wait_serving(service, version, timeout=5)

    # started again, it adopts them: nothing restarted, nothing re-applied
    mark = fleet.last_event_id()
    fleet.start()
    time.sleep(1.5)
    assert {c: fleet.agent_pid(c) for c in fleet.cells} == agents
    assert fleet.replica_pids() == pids
    noisy = [
        e
        for e in fleet.events(after=mark)
        if e.kind in ("agent-restarted", "drift", "applied", "rollout-started")
    ]
    assert not noisy, noisy
