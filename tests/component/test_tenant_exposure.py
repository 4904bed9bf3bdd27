"""Exposure, live: the controller records the weighted share of tenants on unbaked cells
as a rollout goes, and a wave's `maxExposure` is never exceeded.

Real store, real Git, real compiler and routing table; the cells are scripted.
"""

from __future__ import annotations

from pathlib import Path

from cellops.backends.fake import FakeBackend
from cellops.controller.exposure import (
    ExposureGate,
    ExposureTracker,
    current_exposure,
    exposure_record,
)
from cellops.health import Health
from cellops.plan.planner import wave_caps
from cellops.router.publisher import TablePublisher
from cellops.router.tablefile import read_table
from cellops.store.records import RolloutState
from cellops.tenancy.exposure import exposure
from cellops.tenancy.ring import Ring
from cellops.tenancy.table import RoutingTable
from tests.component.test_rollout_machine import Harness, _bump
from tests.fleetrepo import FleetRepo

TENANTS = (
    "apiVersion: cellops.dev/v1\nkind: Tenants\nmetadata: {name: main}\nspec:\n  tenants:\n"
    "    - id: qa\n      canary: true\n"
    "    - id: big\n      cell: us-1\n      weight: 4\n"
    + "".join(f"    - id: t{i}\n" for i in range(12))
)


def _wire(harness: Harness, table: Path) -> TablePublisher:
    """What `cellops.wiring` adds: the table's publisher, exposure tracker and cap gate."""
    publisher = TablePublisher(table)
    reconciler = harness.reconciler
    reconciler.publish = publisher
    reconciler.exposure = ExposureTracker(publisher.current)

    def caps(rev: str) -> dict[str, float]:
        return wave_caps(reconciler.compiler.revision(rev).fleet.spec.rollout)

    reconciler.rollouts.exposure_gate = ExposureGate(harness.store, publisher.current, caps)
    return publisher


def _with_tenants(harness: Harness, table: Path) -> RoutingTable:
    """The tenants committed, their table published, every cell baked."""
    _wire(harness, table)
    harness.repo.write("tenants/main.yaml", TENANTS)
    harness.repo.commit("tenants")
    harness.run(lambda: current_exposure(harness.store) == 0.0)
    return read_table(table)


def _unbaked(harness: Harness) -> tuple[str, ...] | None:
    record = exposure_record(harness.store)
    return None if record is None else record.cells


def test_exposure_is_recorded_while_a_revision_bakes_and_drops_to_zero(
    harness: Harness, tmp_path: Path
) -> None:
    table = _with_tenants(harness, tmp_path / "routing.json")
    head = _bump(harness.repo, "fast")
    seen: list[tuple[float | None, tuple[str, ...]]] = []

    def done() -> bool:
        record = exposure_record(harness.store)
        if record is not None and (not seen or seen[-1] != (record.ratio, record.cells)):
            seen.append((record.ratio, record.cells))
        return harness.done(head)() and current_exposure(harness.store) == 0.0

    harness.run(done)
    assert harness.latest() is RolloutState.COMPLETED
    canary = exposure(table, {"canary"})
    assert 0 < canary < 1
    assert (canary, ("canary",)) in seen  # the canary wave, alone
    assert (exposure(table, {"eu-1", "us-1"}), ("eu-1", "us-1")) in seen  # then the rest
    assert seen[-1] == (0.0, ())
    assert harness.store.setting("tenancy.exposure") is not None


def test_a_restarted_controller_records_the_exposure_again(
    harness: Harness, tmp_path: Path
) -> None:
    _with_tenants(harness, tmp_path / "routing.json")
    harness.store.delete_setting("tenancy.exposure")
    harness.restart()
    _wire(harness, tmp_path / "routing.json")  # reads the table from its file
    harness.run(lambda: current_exposure(harness.store) == 0.0, passes=3)


def test_no_table_means_no_exposure(fleet: FleetRepo, tmp_path: Path) -> None:
    h = Harness(fleet, tmp_path / "c.db", FakeBackend())
    _wire(h, tmp_path / "missing" / "routing.json")
    assert h.reconciler.exposure is not None
    h.reconciler.publish = None  # nothing publishes: nothing to measure
    h.run(h.settled)
    assert current_exposure(h.store) is None


def test_a_tenant_added_while_the_canary_bakes_is_placed_elsewhere(
    harness: Harness, tmp_path: Path
) -> None:
    path = tmp_path / "routing.json"
    before = _with_tenants(harness, path)
    ring = Ring(["canary", "eu-1", "us-1"])
    new = next(f"n{i}" for i in range(1000) if ring.owner(f"n{i}") == "canary")
    head = _bump(harness.repo, "slow")
    slow = harness.reconciler.compiler.desired(head).cells["canary"].services["api"].hash
    harness.backend.health = lambda c, s, h: Health.PROGRESSING if h == slow else Health.HEALTHY
    harness.run(lambda: _unbaked(harness) == ("canary",))
    harness.repo.write("tenants/main.yaml", TENANTS + f"    - id: {new}\n")
    harness.repo.commit(f"tenant {new}")
    harness.run(lambda: new in read_table(path).tenants)
    after = read_table(path)
    assert after.tenants[new] != "canary"  # new: kept off the unbaked canary
    stayed = [t for t, c in before.tenants.items() if c == "canary"]
    assert stayed and all(after.tenants[t] == "canary" for t in stayed)  # existing: stay


def _cap(harness: Harness, wave: str, cap: str) -> None:
    text = harness.repo.read("cellops.yaml")
    at = text.index(f"- name: {wave}\n") + len(f"- name: {wave}\n")
    harness.repo.write("cellops.yaml", text[:at] + f"        maxExposure: {cap}\n" + text[at:])


def test_a_capped_wave_goes_one_cell_at_a_time_and_never_exceeds_its_cap(
    harness: Harness, tmp_path: Path
) -> None:
    table = _with_tenants(harness, tmp_path / "routing.json")
    shares = {c: exposure(table, {c}) for c in ("eu-1", "us-1")}
    cap = max(shares.values()) + 0.01  # room for either cell, not for both
    assert sum(shares.values()) > cap
    _cap(harness, "rest", f"{cap * 100:.2f}%")
    head = _bump(harness.repo, "capped")
    highest = 0.0

    def done() -> bool:
        nonlocal highest
        highest = max(highest, current_exposure(harness.store) or 0.0)
        return harness.done(head)()

    harness.run(done)
    assert harness.latest() is RolloutState.COMPLETED
    rollout = harness.store.rollouts(limit=1)[0]
    assert [w.cell_names for w in rollout.plan.waves] == [["canary"], ["eu-1"], ["us-1"]]
    assert 0 < highest <= cap


def test_a_wave_whose_own_cells_are_over_the_cap_halts_before_it_is_applied(
    harness: Harness, tmp_path: Path
) -> None:
    share = exposure(_with_tenants(harness, tmp_path / "routing.json"), {"canary"})
    _cap(harness, "canary", f"{share * 100 / 2:.2f}%")
    applies = harness.backend.cells["canary"].applies
    head = _bump(harness.repo, "too-exposed")
    harness.run(harness.done(head))
    rollout = harness.store.rollouts(limit=1)[0]
    assert rollout.state is RolloutState.HALTED
    assert "maxExposure" in rollout.reason and "canary hold" in rollout.reason
    assert harness.backend.cells["canary"].applies == applies  # never applied
