"""A local cell keeps serving without its control plane: `cellops up` as a process, real
agents, proxies and replicas.

With the controller stopped and the cell's agent SIGKILLed, the cell's service port keeps
answering (its proxy is a process of its own), and a new agent adopts the proxy without
closing its listener. A dead proxy is restarted by its agent and reported as drift. A
second state folder of the same fleet is refused the cells' addresses: its rollout fails
the cell instead of reporting the first one's replicas as its own.
"""

from __future__ import annotations

import copy
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.backends.local import process
from cellops.backends.local.layout import cell_paths, read_json
from cellops.store.records import RolloutState
from tests.integration.controller_harness import Fleet, ServiceDef, http_get, wait_for

pytestmark = pytest.mark.slow

WEB = ServiceDef("web", 18093, probes=True)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    live = Fleet(tmp_path / "fleet", f"s{secrets.token_hex(3)}", [WEB], regions=("a",))
    try:
        live.start()
        live.wait_rollout(live.head, RolloutState.COMPLETED, timeout=60)
        live.wait_serving("web", "v1")
        yield live
    finally:
        leftovers = live.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


class Counter(threading.Thread):
    """GET the service port over and over; count answers and failures."""

    def __init__(self, address: str, port: int) -> None:
        super().__init__(daemon=True)
        self.address, self.port = address, port
        self.ok = self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            if http_get(self.address, self.port, timeout=2) == "v1":
                self.ok += 1
            else:
                self.failed += 1
            time.sleep(0.005)

    def window(self, seconds: float, least: int) -> tuple[int, int]:
        """(answers, failures) over at least `seconds` and `least` requests."""
        ok, failed, start = self.ok, self.failed, time.monotonic()
        wait_for(
            f"{least} requests over {seconds}s",
            lambda: (
                time.monotonic() - start >= seconds and self.ok + self.failed >= ok + failed + least
            ),
            60,
        )
        return self.ok - ok, self.failed - failed


def proxy_of(fleet: Fleet, cell: str) -> dict[str, object]:
    return read_json(cell_paths(fleet.state, cell).proxy) or {}


def test_a_cell_serves_with_its_controller_stopped_and_its_agent_killed(fleet: Fleet) -> None:
    cell = f"{fleet.prefix}-a1"
    proxy = proxy_of(fleet, cell)
    fleet.stop_controller()
    counter = Counter(fleet.address(cell), WEB.port)
    counter.start()
    try:
        agent = fleet.agent_pid(cell)
        os.kill(agent, signal.SIGKILL)
        wait_for("the agent to die", lambda: process.start_time(agent) is None, 10)
        ok, failed = counter.window(3.0, least=100)
        assert failed <= (ok + failed) // 100, f"{failed} of {ok + failed} requests failed"

        # a new controller starts a new agent, which adopts the running proxy
        fleet.start()
        wait_for(
            "a new agent to report",
            lambda: (
                fleet.status(cell).get("pid") not in (None, agent)
                and process.start_time(int(fleet.status(cell)["pid"])) is not None
            ),
            20,
        )
        ok, failed = counter.window(2.0, least=50)
        assert failed <= (ok + failed) // 100, f"{failed} of {ok + failed} requests failed"
    finally:
        counter.halt.set()
        counter.join(timeout=10)
    adopted = proxy_of(fleet, cell)
    assert (adopted["pid"], adopted["started"]) == (proxy["pid"], proxy["started"])
    assert fleet.status(cell)["proxy"] == {"pid": proxy["pid"], "running": True}
    assert fleet.status(cell)["services"]["web"]["listeners"] == {str(WEB.port): "bound"}


def test_a_dead_proxy_is_restarted_and_shows_as_drift(fleet: Fleet) -> None:
    cell = f"{fleet.prefix}-canary"
    before = proxy_of(fleet, cell)
    after_event = fleet.last_event_id()
    os.kill(int(str(before["pid"])), signal.SIGKILL)
    (event,) = wait_for(
        "a drift event for the proxy",
        lambda: [
            e for e in fleet.events(after_event, kind="drift", cell=cell) if "proxy" in e.message
        ],
        20,
    )
    assert event.service == "web"
    assert event.message == f"{cell}/web: the cell's proxy (pid {before['pid']}) exited; restarted"
    fleet.wait_serving("web", "v1", cells=[cell])
    assert proxy_of(fleet, cell)["pid"] != before["pid"]


def test_a_second_state_folder_of_the_fleet_is_refused_its_addresses(
    fleet: Fleet, tmp_path: Path
) -> None:
    twin = copy.copy(fleet)  # the same repo, another state folder
    twin.state, twin.controller = tmp_path / "twin-state", None
    twin._store, twin._log = None, tmp_path / "twin.out"
    try:
        twin.start()
        rollout = twin.wait_rollout(twin.head, RolloutState.HALTED, timeout=60)
        canary = f"{fleet.prefix}-canary"
        failed = twin.events(kind="cell-failed", cell=canary)
        assert failed, twin.describe()
        address = fleet.address(canary)
        assert (
            f"cell {canary}: address {address} is held by cell {canary} of the state folder"
            f" {fleet.state}" in failed[0].message
        ), failed[0].message
        assert rollout.reason
        agents = [c for c in twin.processes().values() if "agent" in c or "proxy" in c]
        assert agents == []
    finally:
        leftovers = twin.down()
    assert not leftovers, leftovers
    fleet.wait_serving("web", "v1")  # the first one never noticed
