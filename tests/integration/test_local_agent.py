"""The local cell agent for real: agent, proxy and replicas are OS processes, probes hit
real sockets, the service ports go through the cell's proxy, and the controller-side
`LocalCells` drives agents from a real Git repo. No mocks.

Every cell gets its own loopback address (127.77.x.y, random per test so that concurrent
runs do not meet), and every test ends by stopping what it started and checking that no
process is left that runs in, or names, the test's temporary folder.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cellops.backends.local import process
from cellops.backends.local.apps import apps_root
from cellops.backends.local.backend import LocalCells
from cellops.backends.local.isolation import app_dir
from cellops.backends.local.layout import cell_paths, read_json
from cellops.backends.local.logtimes import read_notes, trim_log
from cellops.backends.local.probes import run_probe
from cellops.health import Health
from cellops.health.replicas import assess
from cellops.pipeline import Compiler
from cellops.source.git import GitSource, export_tree
from tests.fleetrepo import FleetRepo
from tests.integration.local_cell import (
    Cell,
    Cells,
    Poller,
    assert_no_processes_left,
    fresh_address,
    get,
    pod_views,
    probe_http,
    processes_under,
    serving,
    wait_for,
    write_app,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app")


@pytest.fixture
def cells(tmp_path: Path, app: Path, request: pytest.FixtureRequest) -> Cells:
    """Make cells under tmp_path/state; all their processes are gone after the test."""
    made = Cells(tmp_path, app)
    request.addfinalizer(made.finish)
    return made


# -- tests ----------------------------------------------------------------------------------
def test_replicas_become_ready_and_the_service_port_round_robins(
    cells: Callable[[str], Cell],
) -> None:
    cell = cells("rr")
    cell.start_agent()
    applied = cell.apply({"web": cell.service("w1", replicas=3, env={"VERSION": "v1"})})
    pods = wait_for("3 ready replicas", lambda: cell.ready("web", 3, "w1", applied), 15)

    status = cell.status()
    assert status["applied"] == applied and status["stray"] == []
    assert status["pid"] == cell.agents[0].pid
    ports = {p["id"]: p["ports"]["http"] for p in pods}
    assert len(set(ports.values())) == 3 and 8080 not in ports.values()
    for p in pods:
        assert p["state"] == "running" and p["restarts"] == 0 and p["hash"] == "w1"
        assert p["id"].startswith("web-w1-")
        record = read_json(cell.paths.replicas / f"{p['id']}.json")
        assert record is not None
        assert process.alive(p["pid"], record["started"])
        # each replica listens on its own port of the cell's address
        direct = get(cell.host, p["ports"]["http"])
        assert direct == {
            "replica": p["id"],
            "port": p["ports"]["http"],
            "host": cell.host,
            "version": "v1",
            "pid": p["pid"],
        }

    # the service port answers through the proxy, round robin over the ready replicas
    serving(cell, 8080, pods)
    answers = [get(cell.host, 8080) for _ in range(9)]
    seen = Counter(a["replica"] for a in answers)
    assert set(seen) == set(ports)
    assert set(seen.values()) == {3}, seen
    assert all(a["port"] == ports[a["replica"]] for a in answers)
    assert all(a["version"] == "v1" for a in answers)
    # only declared service ports are served
    with pytest.raises(OSError):
        get(cell.host, 8081, timeout=1)


def test_round_robin_is_per_service_port(cells: Callable[[str], Cell]) -> None:
    cell = cells("rr2")
    cell.start_agent()
    cell.apply(
        {
            "front": cell.service("f1", replicas=2, port=8080),
            "back": cell.service("b1", replicas=2, port=8081),
        }
    )
    serving(cell, 8080, wait_for("2 ready front replicas", lambda: cell.ready("front", 2), 15))
    serving(cell, 8081, wait_for("2 ready back replicas", lambda: cell.ready("back", 2), 15))
    front, back = Counter(), Counter()
    for _ in range(8):  # as a front replica that calls its back end once per request
        front[get(cell.host, 8080)["replica"]] += 1
        back[get(cell.host, 8081)["replica"]] += 1
    assert sorted(front.values()) == [4, 4], front
    assert sorted(back.values()) == [4, 4], back


def test_rolling_update_keeps_serving_and_ends_with_only_new_replicas(
    cells: Callable[[str], Cell],
) -> None:
    cell = cells("roll")
    cell.start_agent()
    strategy = {"maxSurge": 1, "maxUnavailable": 0}
    cell.apply({"web": cell.service("v1", replicas=3, env={"VERSION": "v1"}, strategy=strategy)})
    serving(cell, 8080, wait_for("3 ready v1 replicas", lambda: cell.ready("web", 3, "v1"), 15))
    old = {r["id"]: (r["pid"], r["started"]) for r in cell.records()}
    assert len(old) == 3

    poller = Poller(cell.host, 8080)
    poller.start()
    try:
        time.sleep(0.3)
        applied = cell.apply(
            {"web": cell.service("v2", replicas=3, env={"VERSION": "v2"}, strategy=strategy)}
        )
        most, fewest_ready = 0, 3
        deadline = time.monotonic() + 30
        while not cell.ready("web", 3, "v2", applied):
            assert time.monotonic() < deadline, f"no rollout: {cell.status()}"
            pods = cell.pods("web")
            most = max(most, len(pods))
            fewest_ready = min(fewest_ready, sum(p["ready"] for p in pods))
            time.sleep(0.02)
        # the old processes end (after their drain), and nothing is left of them
        wait_for(
            "the old replicas to exit",
            lambda: not any(process.alive(pid, st) for pid, st in old.values()),
            15,
        )
        wait_for("only new replica records", lambda: len(cell.records()) == 3, 10)
        time.sleep(0.3)
        tail = len(poller.answers)
        time.sleep(0.5)
    finally:
        poller.stop()

    assert poller.failures == [], poller.failures[:10]
    assert most <= 4, "more than replicas + maxSurge at once"
    assert fewest_ready >= 3, "availability went below replicas - maxUnavailable"
    versions = [a["version"] for a in poller.answers]
    assert versions.count("v1") > 0 and versions.count("v2") > 0
    first_v2 = versions.index("v2")
    assert len(poller.answers) - tail > 5
    assert set(versions[tail:]) == {"v2"}
    assert first_v2 < tail
    records = cell.records()
    assert {r["hash"] for r in records} == {"v2"}
    assert not set(old) & {r["id"] for r in records}
    assert {p["id"] for p in cell.pods("web")} == {r["id"] for r in records}
    assert all(p["restarts"] == 0 for p in cell.pods("web"))


def test_a_new_version_that_never_becomes_ready_leaves_the_old_one_serving(
    cells: Callable[[str], Cell],
) -> None:
    cell = cells("stuck")
    cell.start_agent()
    cell.apply({"web": cell.service("v1", replicas=2, env={"VERSION": "v1"})})
    before = wait_for("2 ready v1 replicas", lambda: cell.ready("web", 2, "v1"), 15)
    serving(cell, 8080, before)
    old = {r["id"]: (r["pid"], r["started"]) for r in cell.records()}

    poller = Poller(cell.host, 8080)
    poller.start()
    try:
        cell.apply(
            {"web": cell.service("v2", replicas=2, env={"VERSION": "v2", "NEVER_READY": "1"})}
        )
        wait_for(
            "the surge replica at v2",
            lambda: any(p["hash"] == "v2" and p["state"] == "running" for p in cell.pods("web")),
            10,
        )
        end = time.monotonic() + 4  # more than readiness failureThreshold x period
        while time.monotonic() < end:
            pods = cell.pods("web")
            assert len(pods) == 3, pods  # 2 old + maxSurge 1, never more
            assert sorted((p["id"], p["pid"], p["ready"]) for p in pods if p["hash"] == "v1") == (
                sorted((p["id"], p["pid"], True) for p in before)
            )
            assert [p["ready"] for p in pods if p["hash"] == "v2"] == [False]
            time.sleep(0.1)
    finally:
        poller.stop()

    assert poller.failures == [], poller.failures[:10]
    assert {a["version"] for a in poller.answers} == {"v1"}
    assert all(process.alive(pid, started) for pid, started in old.values())
    health, reason, running = assess(2, "v2", pod_views(cell.pods("web")))
    assert health is Health.PROGRESSING
    assert reason == "0/2 ready at the desired version, 2 old"
    assert running is None


def roll_out(
    cell: Cell, service: str, spec: dict[str, Any], timeout: float = 15
) -> tuple[Poller, int, bool]:
    """Apply `spec` while polling the service port; (poller, fewest ready, completed)."""
    poller = Poller(cell.host, 8080)
    poller.start()
    fewest_ready, done = spec["replicas"], False
    try:
        time.sleep(0.2)
        cell.apply({service: spec})
        deadline = time.monotonic() + timeout
        while not done and time.monotonic() < deadline and cell.agents[-1].poll() is None:
            pods = cell.pods(service)
            fewest_ready = min(fewest_ready, sum(p["ready"] for p in pods))
            done = bool(cell.ready(service, spec["replicas"], spec["hash"]))
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        poller.stop()
    return poller, fewest_ready, done


def test_a_new_version_that_adds_a_port_rolls_out(cells: Callable[[str], Cell]) -> None:
    cell = cells("addport")
    agent = cell.start_agent()
    cell.apply({"web": cell.service("v1", replicas=2, env={"VERSION": "v1"})})
    serving(cell, 8080, wait_for("2 ready v1 replicas", lambda: cell.ready("web", 2, "v1"), 15))
    spec = cell.service("v2", replicas=2, env={"VERSION": "v2"})
    spec["ports"].append({"name": "admin", "port": 8081})
    poller, fewest_ready, done = roll_out(cell, "web", spec)
    assert agent.poll() is None, cell.agent_log()[-2000:]
    assert done, cell.status()
    assert poller.failures == [] and fewest_ready >= 2
    assert all(set(p["ports"]) == {"http", "admin"} for p in cell.pods("web"))


def test_a_new_version_that_adds_a_startup_probe_keeps_the_old_one_serving(
    cells: Callable[[str], Cell],
) -> None:
    cell = cells("addstartup")
    cell.start_agent()
    cell.apply({"web": cell.service("v1", replicas=2, env={"VERSION": "v1"})})
    old = wait_for("2 ready v1 replicas", lambda: cell.ready("web", 2, "v1"), 15)
    serving(cell, 8080, old)
    control = cell.control("-v2")
    (control / "started").write_text("")  # v2 starts fine
    spec = cell.service(
        "v2",
        replicas=2,
        env={"VERSION": "v2"},
        control=control,
        probes={"startup": probe_http("/startz"), "readiness": probe_http("/healthz")},
    )
    poller, fewest_ready, done = roll_out(cell, "web", spec)
    assert done, cell.status()
    assert fewest_ready >= 2, f"{fewest_ready} ready during the update; maxUnavailable is 0"
    assert poller.failures == [], f"{len(poller.failures)} failed requests: {poller.failures[:3]}"
    assert {p["id"] for p in old}.isdisjoint(p["id"] for p in cell.pods("web"))


def test_liveness_failures_restart_with_growing_back_off(cells: Callable[[str], Cell]) -> None:
    cell = cells("live")
    control = cell.control()
    cell.start_agent()
    probes = {
        "readiness": probe_http("/healthz"),
        "liveness": probe_http("/livez", failureThreshold=2),
    }
    cell.apply({"flaky": cell.service("f1", probes=probes)})
    (pod,) = wait_for("a ready replica", lambda: cell.ready("flaky", 1), 15)
    replica = pod["id"]

    (control / "dead").write_text("")
    first_seen: dict[tuple[str, int], float] = {}
    pids = [pod["pid"]]
    deadline = time.monotonic() + 25
    while ("running", 3) not in first_seen:
        assert time.monotonic() < deadline, (first_seen, cell.status())
        (now_pod,) = cell.pods("flaky")
        assert now_pod["id"] == replica  # restarted in place
        first_seen.setdefault((now_pod["state"], now_pod["restarts"]), time.monotonic())
        if now_pod["pid"] != pids[-1]:
            pids.append(now_pod["pid"])
        time.sleep(0.02)
    gaps = [first_seen[("running", n)] - first_seen[("waiting", n)] for n in (1, 2, 3)]
    for gap, delay in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert delay - 0.5 <= gap <= delay + 1.5, (gaps, first_seen)
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert len(pids) == 4 and len(set(pids)) == 4  # a new process each time
    announced = re.findall(
        rf"replica {replica} liveness probe failed; restart in (\d+)s", cell.agent_log()
    )
    assert announced[:3] == ["1", "2", "4"], cell.agent_log()

    # healthy again: the replica stays, with its restarts counted
    (control / "dead").unlink()
    wait_for(
        "the replica to run and be ready again",
        lambda: (p := cell.pods("flaky")) and p[0]["ready"] and p[0]["restarts"] in (3, 4),
        15,
    )
    restarts = cell.pods("flaky")[0]["restarts"]
    time.sleep(2.5)  # more than liveness failureThreshold x period: no more kills
    (after,) = cell.pods("flaky")
    assert after["restarts"] == restarts and after["ready"]
    assert cell.status()["repairs"] == []  # probe kills are not drift repairs


def test_a_crash_loop_shows_restarts_and_is_degraded(
    cells: Callable[[str], Cell], tmp_path: Path
) -> None:
    cell = cells("crash")
    cell.start_agent()
    applied = cell.apply({"crashy": cell.service("c1", env={"EXIT_AT_START": "1"})})
    (pod,) = wait_for(
        "3 restarts",
        lambda: [p for p in cell.pods("crashy") if p["restarts"] >= 3],
        20,
    )
    assert not pod["ready"]
    health, reason, running = assess(1, "c1", pod_views(cell.pods("crashy")))
    assert health is Health.DEGRADED
    assert reason.startswith("CrashLoopBackOff")
    assert running == "c1"
    # the controller's view of it says the same
    seen = LocalCells(tmp_path / "state", export=lambda tree, target: None).observe("crash")
    assert seen.reachable and seen.applied == applied
    service = seen.services["crashy"]
    assert service.health is Health.DEGRADED and service.reason.startswith("CrashLoopBackOff")
    assert service.restarts >= 3 and service.ready == 0 and service.desired == 1
    status = cell.status()
    assert status["repairs"] == [] and status["repairSeq"] == 0  # it never was ready
    log = cell.log_of("crashy", pod["id"]).read_text()
    assert log.count("exiting at start, as told") >= 3
    assert re.findall(r"restart in (\d+)s", cell.agent_log())[:3] == ["1", "2", "4"]


def test_tcp_and_exec_probes(cells: Callable[[str], Cell], tmp_path: Path) -> None:
    cell = cells("probes")
    exec_app = tmp_path / "exec-app"
    shutil.copytree(cell.app, exec_app)
    cell.start_agent()
    cell.apply(
        {
            "bytcp": cell.service(
                "t1", port=8090, probes={"readiness": {"tcp": {"port": "http"}, "periodSeconds": 1}}
            ),
            # a declared port number means that port of each replica
            "bynumber": cell.service(
                "n1",
                port=8082,
                probes={
                    "liveness": {
                        "tcp": {"port": 8082},
                        "periodSeconds": 1,
                        "failureThreshold": 2,
                        "initialDelaySeconds": 1,
                    },
                    "readiness": {"tcp": {"port": 8082}, "periodSeconds": 1},
                },
            ),
            "byexec": cell.service(
                "e1",
                port=8091,
                cwd=exec_app,
                probes={
                    "readiness": {
                        "exec": {"command": ["test", "-f", "ready.flag"]},
                        "periodSeconds": 1,
                    }
                },
            ),
        }
    )
    serving(
        cell, 8090, wait_for("the tcp-probed replica ready", lambda: cell.ready("bytcp", 1), 15)
    )
    by_number = wait_for(
        "the replica probed on a number ready", lambda: cell.ready("bynumber", 1), 15
    )
    serving(cell, 8082, by_number)

    # no ready.flag in its folder: running, but never ready, and not routed to
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        (pod,) = cell.pods("byexec")
        assert pod["state"] == "running" and not pod["ready"], pod
        time.sleep(0.1)
    with pytest.raises(OSError):
        get(cell.host, 8091, timeout=2)
    (exec_app / "ready.flag").write_text("")  # relative to the replica's cwd
    serving(
        cell, 8091, wait_for("the exec-probed replica ready", lambda: cell.ready("byexec", 1), 10)
    )
    assert all(cell.pods(s)[0]["restarts"] == 0 for s in ("bytcp", "bynumber", "byexec"))


def test_a_failing_exec_probe_never_passes_while_the_agent_reaps(tmp_path: Path) -> None:
    """The agent reaps its replicas on every tick while exec probes run in worker threads.
    Reaping only the replicas' pids must leave the probes' exit statuses alone (reaping
    any child would make a failing probe pass), and must still collect the replicas."""
    replica = subprocess.Popen(["sleep", "30"])
    halt = threading.Event()
    errors: list[BaseException] = []

    def reap_like_the_agent() -> None:
        try:
            while not halt.is_set():
                process.reap([replica.pid])
                time.sleep(0.001)
        except BaseException as exc:  # surfaced below: a dead reaper proves nothing
            errors.append(exc)

    reaper = threading.Thread(target=reap_like_the_agent, daemon=True)
    reaper.start()
    probe = {"exec": {"command": ["test", "-f", "absent.flag"]}}
    try:
        results = [run_probe(probe, "127.0.0.1", {}, tmp_path) for _ in range(40)]
        replica.kill()
        deadline = time.time() + 5
        while Path(f"/proc/{replica.pid}").exists() and time.time() < deadline:
            time.sleep(0.01)
        collected = not Path(f"/proc/{replica.pid}").exists()
    finally:
        halt.set()
        reaper.join(timeout=5)
        if replica.poll() is None:
            replica.kill()
    assert not errors, errors
    assert results.count(True) == 0, f"{results.count(True)}/40 failing probes passed"
    assert collected, "the killed replica was left a zombie"


def test_a_startup_probe_gates_readiness_and_liveness(cells: Callable[[str], Cell]) -> None:
    cell = cells("startup")
    slow, never = cell.control("-slow"), cell.control("-never")
    (slow / "dead").write_text("")  # liveness would fail at once, if it ran
    cell.start_agent()
    cell.apply(
        {
            "slow": cell.service(
                "s1",
                control=slow,
                probes={
                    "startup": probe_http("/startz", failureThreshold=30),
                    "readiness": probe_http("/healthz"),
                    "liveness": probe_http("/livez", failureThreshold=1),
                },
            ),
            "never": cell.service(
                "x1",
                port=8081,
                control=never,
                probes={
                    "startup": probe_http("/startz", failureThreshold=2),
                    "readiness": probe_http("/healthz"),
                },
            ),
        }
    )
    wait_for(
        "the slow replica to run", lambda: cell.pods("slow") and cell.pods("slow")[0]["pid"], 10
    )
    end = time.monotonic() + 3
    while time.monotonic() < end:
        (pod,) = cell.pods("slow")
        assert pod["state"] == "running" and not pod["ready"] and pod["restarts"] == 0, pod
        time.sleep(0.1)
    (slow / "dead").unlink()
    (slow / "started").write_text("")
    (pod,) = wait_for("the slow replica ready", lambda: cell.ready("slow", 1), 10)
    assert pod["restarts"] == 0

    # a startup probe that never passes: killed and restarted, never ready
    (pod,) = wait_for(
        "a restart of the replica that never starts",
        lambda: [p for p in cell.pods("never") if p["restarts"] >= 1],
        10,
    )
    assert not pod["ready"]
    assert "startup probe failed" in cell.agent_log()


def test_a_replica_killed_by_hand_is_restarted_and_reported(cells: Callable[[str], Cell]) -> None:
    cell = cells("kill")
    cell.start_agent()
    cell.apply(
        {
            "web": cell.service("w1", replicas=2),
            "cold": cell.service("k1", port=8081, env={"NEVER_READY": "1"}),
        }
    )
    pods = wait_for("2 ready replicas", lambda: cell.ready("web", 2), 15)
    victim = pods[0]
    assert cell.status()["repairs"] == []
    os.killpg(victim["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        for p in cell.pods("web"):
            if p["id"] == victim["id"] and p["pid"] != victim["pid"] and p["ready"]:
                return p
        return None

    again = wait_for("the killed replica to run again", restarted, 15)
    assert again["restarts"] == 1
    assert {p["id"] for p in cell.pods("web")} == {p["id"] for p in pods}  # no new replica
    status = cell.status()
    assert status["repairSeq"] == 1
    (repair,) = status["repairs"]
    assert repair["seq"] == 1 and repair["service"] == "web"
    assert repair["what"].startswith(
        f"replica {victim['id']} exited unexpectedly after being ready"
    )

    # a replica that never was ready is restarted too, but that is not a repair
    (cold,) = wait_for("the cold replica", lambda: [p for p in cell.pods("cold") if p["pid"]], 10)
    os.killpg(cold["pid"], signal.SIGKILL)
    wait_for(
        "the cold replica restarted",
        lambda: [p for p in cell.pods("cold") if p["restarts"] == 1 and p["state"] == "running"],
        10,
    )
    assert cell.status()["repairSeq"] == 1 and len(cell.status()["repairs"]) == 1


def test_a_new_agent_adopts_the_replicas_of_a_killed_one(cells: Callable[[str], Cell]) -> None:
    cell = cells("adopt")
    first = cell.start_agent()
    applied = cell.apply({"web": cell.service("w1", replicas=3)})
    pods = wait_for("3 ready replicas", lambda: cell.ready("web", 3, applied=applied), 15)
    serving(cell, 8080, pods)
    records = {r["id"]: r for r in cell.records()}

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    # the replicas outlive their agent and keep serving on their own ports
    for p in pods:
        assert process.alive(p["pid"], records[p["id"]]["started"])
        assert get(cell.host, p["ports"]["http"])["pid"] == p["pid"]
    dead = pods[0]  # one dies while no agent runs
    os.killpg(dead["pid"], signal.SIGKILL)
    wait_for(
        "the replica to die",
        lambda: not process.alive(dead["pid"], records[dead["id"]]["started"]),
        5,
    )

    second = cell.start_agent()
    assert second.pid != first.pid

    def adopted() -> list[dict[str, Any]] | None:
        status = cell.status()
        if status.get("pid") != second.pid:
            return None
        return cell.ready("web", 3)

    now = wait_for("the new agent to have 3 ready replicas", adopted, 15)
    assert {p["id"] for p in now} == {p["id"] for p in pods}  # no duplicates, no new ones
    by_id = {p["id"]: p for p in now}
    for p in pods[1:]:  # adopted: the very same processes
        assert by_id[p["id"]]["pid"] == p["pid"] and by_id[p["id"]]["restarts"] == 0
    assert by_id[dead["id"]]["pid"] != dead["pid"]
    assert by_id[dead["id"]]["restarts"] == 1
    assert len(cell.records()) == 3
    status = cell.status()
    assert [r["service"] for r in status["repairs"]] == ["web"]
    assert dead["id"] in status["repairs"][0]["what"]
    serving(cell, 8080, now)  # the new agent's proxy routes to all of them


def test_replica_logs_are_kept_per_replica(cells: Callable[[str], Cell]) -> None:
    cell = cells("logs")
    started = time.time()
    cell.start_agent()
    cell.apply({"chatty": cell.service("l1")})
    (pod,) = wait_for("a ready replica", lambda: cell.ready("chatty", 1), 15)
    serving(cell, 8080, [pod])
    get(cell.host, 8080, "/hello")
    log = cell.log_of("chatty", pod["id"])
    assert log == cell.paths.root / "logs" / "chatty" / f"{pod['id']}.log"
    wait_for("the request in the log", lambda: "request /hello" in log.read_text(), 5)
    text = log.read_text()
    assert f"listening on {cell.host}:{pod['ports']['http']} as {pod['id']}" in text
    assert "request /healthz" in text  # the probes' requests too

    os.killpg(pod["pid"], signal.SIGKILL)  # the restarted process appends to the same log
    wait_for(
        "the replica restarted",
        lambda: [p for p in cell.pods("chatty") if p["restarts"] == 1 and p["ready"]],
        15,
    )
    wait_for("a second start in the log", lambda: log.read_text().count("listening on") == 2, 5)
    size = log.stat().st_size  # the agent notes when the log grew (logtimes.py), once a second
    wait_for("a note of that output", lambda: any(o >= size for o, _ in read_notes(log)), 15)
    assert all(started - 5 <= when <= time.time() for _, when in read_notes(log))
    assert sorted(p.name for p in log.parent.iterdir()) == [log.name, f"{log.name}.times"]


def test_trim_log_keeps_logs_bounded(tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    trim_log(log, 100)  # no log yet: nothing to do
    assert not log.exists()
    with open(log, "ab") as writer:  # as a replica writes: O_APPEND
        writer.write(b"a" * 60)
        writer.flush()
        trim_log(log, 100)
        assert log.read_bytes() == b"a" * 60  # under the limit: untouched
        writer.write(b"b" * 60)
        writer.flush()
        trim_log(log, 100)
        rotated = tmp_path / "r.log.1"
        assert rotated.read_bytes() == b"a" * 40 + b"b" * 60  # the last `limit` bytes
        assert log.read_bytes() == b""
        writer.write(b"c" * 10)  # lands at the new end, no hole of zeros before it
        writer.flush()
        assert log.read_bytes() == b"c" * 10
        writer.write(b"d" * 200)
        writer.flush()
        trim_log(log, 100)
        assert rotated.read_bytes() == b"d" * 100  # .1 is replaced, not grown
        assert log.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.log", "r.log.1"]


# -- LocalCells against a real Git repo ---------------------------------------------------------
STORE_APP = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"service": "store", "replica": os.environ["CELLOPS_REPLICA"],
                           "cell": os.environ["CELLOPS_CELL"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""

API_APP = r"""
import json, os, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            answer = {"ok": True}
        else:
            with urllib.request.urlopen(os.environ["STORE_URL"] + "/", timeout=3) as response:
                answer = {"service": "api", "mode": os.environ["MODE"],
                          "store": json.loads(response.read())}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""


def _try_get(host: str, port: int) -> dict[str, Any] | None:
    try:
        return get(host, port)
    except (OSError, http.client.HTTPException, AssertionError):
        return None


@pytest.fixture
def local_cells(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[Path], LocalCells]:
    state = tmp_path / "state"
    made: list[LocalCells] = []

    def finish() -> None:
        for backend in made:
            for cell in sorted(p.name for p in (state / "cells").glob("*")):
                backend.stop(cell, workloads=True)
        assert_no_processes_left(tmp_path)
        assert_no_processes_left(apps_root(state))  # replicas of cells with users of their own

    request.addfinalizer(finish)

    def build(repo: Path) -> LocalCells:
        backend = LocalCells(
            state, export=lambda tree, target: export_tree(GitSource(repo).root, tree, target)
        )
        made.append(backend)
        return backend

    return build


def test_local_cells_run_a_fleet_from_git(
    tmp_path: Path, local_cells: Callable[[Path], LocalCells]
) -> None:
    repo = FleetRepo(tmp_path / "fleet")
    address = fresh_address()
    repo.replace(
        "cells/eu-1.yaml", "backend: local", f"backend: {{type: local, address: {address}}}"
    )
    repo.write("services/store/app/main.py", STORE_APP)
    repo.write("services/api/app/main.py", API_APP)
    for service in ("store", "api"):
        repo.replace(
            f"services/{service}/service.yaml",
            "readiness:\n      http: {path: /healthz, port: http}",
            "readiness:\n      http: {path: /healthz, port: http}\n      periodSeconds: 1",
        )
    repo.commit("real apps")
    fleet = Compiler(GitSource(repo.path)).desired("HEAD")
    cell = fleet.cells["eu-1"]
    store, api = cell.services["store"], cell.services["api"]

    backend = local_cells(repo.path)
    backend.ensure(cell)
    paths = cell_paths(tmp_path / "state", "eu-1")
    assert backend.agent_alive("eu-1")
    agent = read_json(paths.pidfile)
    backend.ensure(cell)  # idempotent: the same agent
    assert read_json(paths.pidfile) == agent

    applied = backend.apply(cell, cell.services)
    desired = read_json(paths.desired)
    assert desired is not None and desired["hash"] == applied and desired["address"] == address
    assert set(desired["services"]) == {"store", "api"}

    def healthy() -> bool:
        seen = backend.observe("eu-1")
        return (
            seen.reachable
            and seen.applied == applied
            and seen.healthy_at("store", store.hash)
            and seen.healthy_at("api", api.hash)
        )

    wait_for("both services healthy at their hashes", healthy, 20)
    seen = backend.observe("eu-1")
    assert seen.desired == applied and seen.reason == "" and seen.repairs == ()
    assert (seen.services["api"].ready, seen.services["api"].desired) == (2, 2)
    assert (seen.services["store"].ready, seen.services["store"].desired) == (1, 1)

    # the service ports on the cell's address, and the dependency wired through them
    answer = wait_for(
        "the api to answer through its service port", lambda: _try_get(address, 8081), 10
    )
    assert answer["service"] == "api" and answer["mode"] == "normal"
    assert answer["store"]["service"] == "store" and answer["store"]["cell"] == "eu-1"
    assert desired["services"]["api"]["env"]["STORE_URL"] == f"http://{address}:8080"

    # applying the same thing again changes nothing, down to the file
    before = paths.desired.stat()
    assert backend.apply(cell, cell.services) == applied
    after = paths.desired.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # and a fresh backend (a restarted controller) computes the same hash
    assert local_cells(repo.path).apply(cell, cell.services) == applied

    # the code runs from read-only copies of the Git trees, one per tree
    for service, name in ((store, "store"), (api, "api")):
        assert service.code is not None
        copy = app_dir(tmp_path / "state", service.code)
        assert desired["services"][name]["cwd"] == str(copy)
        assert (copy / "main.py").read_text() == repo.read(f"services/{name}/app/main.py")
        assert (copy / "main.py").stat().st_mode & 0o222 == 0
        assert sorted(p.name for p in copy.iterdir()) == ["main.py"]
    tree = repo.repo.revparse_single("HEAD:services/store/app")
    assert str(tree.id) == store.code

    pids = {
        p["pid"] for s in (read_json(paths.status) or {})["services"].values() for p in s["pods"]
    }
    assert len(pids) == 3
    backend.stop("eu-1", workloads=True)
    assert not backend.agent_alive("eu-1")
    assert list(paths.replicas.glob("*.json")) == []
    assert all(process.start_time(pid) is None for pid in pids)
    assert not backend.observe("eu-1").reachable
    assert processes_under(tmp_path) == []
