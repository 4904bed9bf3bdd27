"""The controller publishes each accepted revision's routing table; `cellops router table`
does the same from the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cellops.router.publisher import TABLE_FILE
from cellops.router.tablefile import read_table
from cellops.wiring import wire
from tests.fleetrepo import FleetRepo
from tests.routerkit.procs import CELLOPS

TENANTS = """apiVersion: cellops.dev/v1
kind: Tenants
metadata:
  name: main
spec:
  tenants:
    - id: acme
      cell: eu-1
"""


def test_an_accepted_revision_publishes_its_table_and_a_move_a_new_version(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    fleet.write("tenants/main.yaml", TENANTS)
    first = fleet.commit("tenants")
    wiring = wire(fleet.path, tmp_path / "state")
    try:
        wiring.reconciler.consider(first, 1.0)
        table = read_table(tmp_path / "state" / TABLE_FILE)
        assert (table.version, table.revision, table.lookup("acme")) == (1, first, "eu-1")
        fleet.replace("tenants/main.yaml", "cell: eu-1", "cell: us-1")
        wiring.reconciler.consider(fleet.commit("move acme"), 2.0)
        table = read_table(tmp_path / "state" / TABLE_FILE)
        assert (table.version, table.lookup("acme")) == (2, "us-1")
    finally:
        wiring.close()


def test_router_table_writes_the_table_of_a_revision(fleet: FleetRepo, tmp_path: Path) -> None:
    fleet.write("tenants/main.yaml", TENANTS)
    fleet.commit("tenants")
    out = tmp_path / "routing.json"
    done = subprocess.run(
        [str(CELLOPS), "router", "table", str(fleet.path), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "version 1, 1 tenant(s) listed" in done.stdout
    assert read_table(out).lookup("acme") == "eu-1"
