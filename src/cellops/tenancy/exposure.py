"""Exposure of a revision: the weighted share of listed tenants whose cell runs it unbaked.

A number for `status`, the API and metrics, and what a wave's `maxExposure` would cap.
Unlisted tenants are not counted (the table does not know them, only where they would go).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection

from cellops.tenancy.table import RoutingTable


def exposure(table: RoutingTable, unbaked: Collection[str]) -> float:
    """0.0-1.0: the weight of the tenants on `unbaked` cells over the weight of all."""
    cells = set(unbaked)
    weights = table.weights
    total = exposed = 0
    for tenant, cell in table.tenants.items():
        weight = weights.get(tenant, 1)
        total += weight
        if cell in cells:
            exposed += weight
    return exposed / total if total else 0.0
