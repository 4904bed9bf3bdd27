"""Exposure of a revision: the weighted share of listed tenants whose cell runs it unbaked.

A number for `status`, the API and metrics, and what a wave's `maxExposure` caps.
Unlisted tenants are not counted (the table does not know them, only where they would go).
Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cellops.tenancy.table import RoutingTable


def exposure(table: RoutingTable, unbaked: Collection[str]) -> float:
    """0.0-1.0: the weight of the tenants on `unbaked` cells over the weight of all."""
    shares = cell_shares(table.tenants, table.weights)
    return min(1.0, sum(shares.get(c, 0.0) for c in set(unbaked)))


def cell_shares(assignment: Mapping[str, str], weights: Mapping[str, int]) -> dict[str, float]:
    """Each cell's share of the tenants, weighted (weights: only those other than 1)."""
    per_cell: dict[str, int] = defaultdict(int)
    total = 0
    for tenant, cell in assignment.items():
        weight = weights.get(tenant, 1)
        per_cell[cell] += weight
        total += weight
    return {c: w / total for c, w in per_cell.items()} if total else {}


@dataclass(frozen=True)
class CapVerdict:
    """Why a wave may not start now. `impossible`: its cells alone are over the cap, so
    waiting cannot help; otherwise other unbaked cells must bake (or roll back) first."""

    message: str
    impossible: bool


def cap_verdict(
    shares: Mapping[str, float], wave: Collection[str], others: Collection[str], cap: float
) -> CapVerdict | None:
    """None if applying `wave` keeps the exposure (its cells and the `others` already
    unbaked) within `cap`."""
    alone = sum(shares.get(c, 0.0) for c in set(wave))
    total = sum(shares.get(c, 0.0) for c in set(wave) | set(others))
    if total <= cap + 1e-9:
        return None
    cells = ", ".join(sorted(wave))
    if alone > cap + 1e-9:
        return CapVerdict(
            f"{cells} hold {alone:.1%} of the tenants (weighted), above the wave's"
            f" maxExposure {cap:.1%}: move tenants off them (tenants/) or raise the cap",
            impossible=True,
        )
    waiting = ", ".join(sorted(set(others) - set(wave)))
    return CapVerdict(
        f"{cells} would raise the exposure to {total:.1%}, above the wave's maxExposure"
        f" {cap:.1%}, while {waiting} run unbaked: waiting for them to bake or roll back",
        impossible=False,
    )
