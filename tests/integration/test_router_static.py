"""Static stability of the router: with the controller SIGKILLed in the middle of a
rollout and gone for 60 s, the embedded router keeps routing every tenant's request to its
cell; a restarted controller then resumes the rollout where it stopped.

Real `cellops up`, real local cells, a real `cellops router run` over the table the
controller published, steady traffic from every tenant (`cellops.cli.demo_traffic`).
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.cli.demo_traffic import TenantTraffic
from cellops.router.publisher import TABLE_FILE
from cellops.store.records import CellStep, RolloutState
from tests.integration.controller_harness import Fleet, ServiceDef, wait_for

pytestmark = pytest.mark.slow

WEB = ServiceDef("web", 18095, probes=True)
AWAY = 60.0  # seconds the controller is gone
TENANTS = (
    "apiVersion: cellops.dev/v1\nkind: Tenants\nmetadata: {name: main}\nspec:\n"
    f"  routing: {{port: {WEB.port}}}\n  tenants:\n"
    "    - id: qa\n      canary: true\n" + "".join(f"    - id: t{i}\n" for i in range(6))
)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    live = Fleet(
        tmp_path / "fleet",
        f"r{secrets.token_hex(3)}",
        [WEB],
        regions=("a", "b"),
        canary_bake="4s",
    )
    live.repo.write("tenants/main.yaml", TENANTS)
    live.commit("tenants")
    try:
        live.start()
        live.wait_rollout(live.head, RolloutState.COMPLETED, timeout=90)
        live.wait_serving("web", "v1")
        yield live
    finally:
        leftovers = live.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def _sent(traffic: TenantTraffic, phase: str) -> int:
    return min(traffic.tallies[phase].sent.values(), default=0)


def test_the_router_routes_on_with_the_controller_killed_mid_rollout(
    fleet: Fleet, tmp_path: Path
) -> None:
    traffic = TenantTraffic(fleet.state / TABLE_FILE, tmp_path)
    assert len(traffic.cells) == 7 and len(set(traffic.cells.values())) == 3
    try:
        traffic.start("controller up")
        wait_for("traffic to flow", lambda: _sent(traffic, "controller up") >= 10, 60)
        head = fleet.release("web", "v2")
        canary = f"{fleet.prefix}-canary"

        def canary_baking() -> bool:
            rollout = fleet.rollout_of(head)
            steps = fleet.store.cell_steps(rollout.id) if rollout else {}
            return steps.get(canary, (0, CellStep.PENDING, ""))[1] is CellStep.HEALTHY

        wait_for("the canary to bake v2", canary_baking, 60)
        fleet.kill(signal.SIGKILL)  # mid-rollout: the canary on v2, the rest on v1
        traffic.phase("controller killed")
        gone = time.monotonic()
        wait_for(
            f"{AWAY:.0f}s of traffic without a controller",
            lambda: time.monotonic() - gone >= AWAY and _sent(traffic, "controller killed") > 0,
            AWAY + 60,
            interval=0.5,
        )
        traffic.phase("controller back")
        killed = traffic.tallies["controller killed"]
        assert sum(killed.failed.values()) == 0, dict(killed.failed)
        assert _sent(traffic, "controller killed") >= AWAY  # each tenant, at least 1 a second

        fleet.start()  # a new controller resumes the rollout where it stopped
        fleet.wait_rollout(head, RolloutState.COMPLETED, timeout=120)
        fleet.wait_serving("web", "v2")
        wait_for("traffic after the restart", lambda: _sent(traffic, "controller back") >= 10, 60)
    finally:
        traffic.stop()
    rollout = fleet.rollout_of(head)
    assert rollout is not None and rollout.state is RolloutState.COMPLETED
    assert len(fleet.rollouts_of(head)) == 1  # resumed, not started again
    back = traffic.tallies["controller back"]
    assert sum(back.failed.values()) == 0, dict(back.failed)
