"""The demo's tenant traffic (`cellops.cli.demo_traffic`) against a real router process and
toy cells: requests counted per phase and tenant, and a cell's failure charged to its own
tenants only."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.cli.demo_traffic import TenantTraffic
from cellops.router.tablefile import write_table
from cellops.tenancy.table import CellRoute, RoutingTable
from tests.routerkit.procs import start_cell, stop, wait_for

pytestmark = pytest.mark.slow


def test_a_dead_cell_costs_only_its_own_tenants(tmp_path: Path) -> None:
    cells = {name: start_cell(name) for name in ("a", "b")}
    traffic = None
    try:
        routes = {n: CellRoute(f"http://127.0.0.1:{port}") for n, (_, port) in cells.items()}
        tenants = {"t1": "a", "t2": "a", "t3": "b"}
        table = tmp_path / "routing.json"
        write_table(table, RoutingTable(1, "r1", routes, tenants, ("a", "b")))
        traffic = TenantTraffic(table, tmp_path)
        traffic.start("calm")
        wait_for(lambda: min(traffic.tallies["calm"].sent.values(), default=0) >= 5, "traffic")
        traffic.phase("b down")
        stop(cells["b"][0])
        wait_for(lambda: traffic.tallies["b down"].failed["t3"] >= 3, "t3's failures")
        wait_for(lambda: traffic.tallies["b down"].sent["t1"] >= 10, "t1 going on")
        traffic.stop()
        assert sum(traffic.tallies["calm"].failed.values()) == 0
        assert traffic.leaks("b down", reached={"b"}) == {}
        assert set(traffic.leaks("b down", reached=set())) == {"t3"}
        by_tenant, by_cell = traffic.report(reached={"b"})
        assert by_tenant.row_count == 3 and by_cell.row_count == 2
    finally:
        if traffic is not None:
            traffic.stop()
        for proc, _ in cells.values():
            stop(proc)
