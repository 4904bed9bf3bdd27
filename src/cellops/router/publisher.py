"""The controller's side of the router: the routing table of each accepted revision,
published next to its state (`<state>/routing.json`), atomically and versioned."""

from __future__ import annotations

from pathlib import Path

from cellops.router.tablefile import publish
from cellops.spec.revision import Revision
from cellops.tenancy.fleet import routing_table
from cellops.tenancy.table import RoutingTable

TABLE_FILE = "routing.json"


def publish_revision(path: Path, revision: Revision) -> RoutingTable:
    """Place the revision's tenants and write the table (a new version only if it changed)."""
    table = routing_table(revision.fleet, revision.cells, revision.tenants, revision.id, 1)
    return publish(path, table)
