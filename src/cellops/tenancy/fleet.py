"""The fleet's tenants: Tenants documents + cells -> placement problems, routing table.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cellops.model.problems import Problem
from cellops.spec.cell import CellDocument, CellState, local_address
from cellops.spec.documents import Parsed
from cellops.spec.fleet import FleetDocument
from cellops.spec.selection import CellIndex
from cellops.spec.tenants import Routing, TenantsDocument
from cellops.tenancy.checks import cell_url_problem
from cellops.tenancy.exposure import cell_shares
from cellops.tenancy.placement import CellSlot, Placement, TenantEntry, place
from cellops.tenancy.table import CellRoute, RoutingTable


@dataclass(frozen=True)
class Tenancy:
    """What a revision says about tenants: routing settings and the tenant entries."""

    routing: Routing
    entries: tuple[TenantEntry, ...]


def tenancy_of(documents: Mapping[str, TenantsDocument]) -> Tenancy:
    routing = next((d.spec.routing for d in documents.values() if d.spec.routing), Routing())
    entries = tuple(
        TenantEntry(t.id, t.cell, t.canary, t.weight)
        for _, doc in sorted(documents.items())
        for t in doc.spec.tenants
    )
    return Tenancy(routing, entries)


def cell_slots(
    fleet: FleetDocument, cells: Mapping[str, CellDocument], routing: Routing
) -> list[CellSlot]:
    ring = set(routing.canary_cells)
    first = fleet.spec.rollout.waves[0]
    if not ring and first.selector:
        ring = set(CellIndex(cells).match_labels(first.selector))
    return [
        CellSlot(name, str(cell.spec.state), cell.spec.capacity.max_tenants, name in ring)
        for name, cell in sorted(cells.items())
    ]


def check_tenants(
    fleet: FleetDocument,
    cells: Mapping[str, CellDocument],
    parsed: Mapping[str, Parsed[TenantsDocument]],
) -> tuple[Placement, list[Problem]]:
    """Placement of a revision's tenants; every problem at its file and line."""
    problems: list[Problem] = []
    where: dict[str, tuple[str, int]] = {}
    folded: dict[str, str] = {}  # lower-case id -> the id as listed
    routing_file: str | None = None
    for path, item in sorted(parsed.items()):
        assert item.model is not None
        if item.model.spec.routing is not None:
            if routing_file is not None:
                problems.append(
                    Problem(
                        path,
                        item.line("spec", "routing"),
                        "spec.routing",
                        f"routing is already set in {routing_file}: set it in one file",
                    )
                )
            routing_file = routing_file or path
        for i, tenant in enumerate(item.model.spec.tenants):
            line = item.line("spec", "tenants", i, "id")
            message = _listed(tenant.id, (path, line), where, folded)
            if message is not None:
                problems.append(Problem(path, line, f"spec.tenants[{i}].id", message))
    tenancy = tenancy_of({p: i.model for p, i in parsed.items() if i.model is not None})
    if tenancy.routing.key == "host":
        problems += [
            Problem(
                path,
                line,
                "spec.tenants",
                f"tenant {tenant!r} has upper-case letters, and with key: host its requests"
                f" come by a host name, which has no case: use {tenant.lower()!r}",
            )
            for tenant, (path, line) in where.items()
            if tenant != tenant.lower()
        ]
    if routing_file is not None:
        problems += _canary_cells(tenancy.routing, cells, parsed[routing_file])
        problems += _entry_points(tenancy.routing, cells, parsed[routing_file])
    result = place(cell_slots(fleet, cells, tenancy.routing), tenancy.entries)
    for error in result.errors:
        path, line = where.get(error.tenant or "", ("tenants/", 0))
        problems.append(
            Problem(path, line or None, "spec.tenants", f"tenant {error.tenant!r} {error.message}")
        )
    return result, problems


def _listed(
    tenant: str, at: tuple[str, int], where: dict[str, tuple[str, int]], folded: dict[str, str]
) -> str | None:
    """Note where `tenant` is listed; why it cannot be (listed before, even in another
    case: a host name and nginx's map do not tell "Acme" from "acme"), or None."""
    other = folded.get(tenant.lower())
    if other is None:
        where[tenant], folded[tenant.lower()] = at, tenant
        return None
    first, first_line = where[other]
    if other == tenant:
        return f"tenant {tenant!r} is already listed at {first}:{first_line}"
    return (
        f"tenant {tenant!r} differs from {other!r} ({first}:{first_line}) only by case:"
        " a host name and nginx's map do not tell them apart"
    )


def tenant_shares(
    fleet: FleetDocument,
    cells: Mapping[str, CellDocument],
    documents: Mapping[str, TenantsDocument],
) -> dict[str, float]:
    """Each cell's weighted share of the listed tenants (empty when no wave caps exposure:
    placing a million tenants is not free)."""
    if all(w.max_exposure is None for w in fleet.spec.rollout.waves):
        return {}
    tenancy = tenancy_of(documents)
    result = place(cell_slots(fleet, cells, tenancy.routing), tenancy.entries)
    weights = {e.id: e.weight for e in tenancy.entries if e.weight != 1}
    return cell_shares(result.assignment, weights)


def _canary_cells(
    routing: Routing, cells: Mapping[str, CellDocument], parsed: Parsed[TenantsDocument]
) -> list[Problem]:
    """`canaryCells` must name cells that take tenants: known, and not retired."""
    problems = []
    for i, cell in enumerate(routing.canary_cells):
        if cell not in cells:
            known = ", ".join(sorted(cells)) or "none"
            message = f"unknown cell {cell!r}: expected one of {known}"
        elif cells[cell].spec.state is CellState.RETIRED:
            message = f"cell {cell!r} is retired: a retired cell takes no tenants, canary or not"
        else:
            continue
        line = parsed.line("spec", "routing", "canaryCells", i)
        problems.append(Problem(parsed.path, line, f"spec.routing.canaryCells[{i}]", message))
    return problems


def routing_table(
    fleet: FleetDocument,
    cells: Mapping[str, CellDocument],
    documents: Mapping[str, TenantsDocument],
    revision: str,
    version: int,
    *,
    unbaked: Collection[str] = (),
    previous: Mapping[str, str] | None = None,
) -> RoutingTable:
    """The table a valid revision routes by (its placement has no errors). Retired cells
    get no route; new tenants keep off `unbaked` cells (`place`)."""
    tenancy = tenancy_of(documents)
    routing = tenancy.routing
    slots = cell_slots(fleet, cells, routing)
    result = place(slots, tenancy.entries, unbaked=unbaked, previous=previous)
    routes = {}
    for name, cell in cells.items():
        if cell.spec.state is CellState.RETIRED:
            continue
        url = routing.entry_points.get(name)
        address = local_address(fleet.metadata.name, name, cell.spec)
        if url is None and address is not None:
            url = f"http://{address}:{routing.port}"
        if url is not None:
            routes[name] = CellRoute(url.rstrip("/"), str(cell.spec.state))
    return RoutingTable(
        version=version,
        revision=revision,
        cells=routes,
        tenants={t: c for t, c in result.assignment.items() if c in routes},
        ring=tuple(c.name for c in slots if c.state == "active" and c.name in routes),
        key=routing.key,
        header=routing.header,
        weights={e.id: e.weight for e in tenancy.entries if e.weight != 1},
    )


def _entry_points(
    routing: Routing, cells: Mapping[str, CellDocument], parsed: Parsed[TenantsDocument]
) -> list[Problem]:
    """`entryPoints` must name known cells, each by a URL the router and the engines can
    use as it is (http or https, a host, no credentials, query or odd characters)."""
    problems = []
    for cell, url in routing.entry_points.items():
        if cell not in cells:
            known = ", ".join(sorted(cells)) or "none"
            message = f"unknown cell {cell!r}: expected one of {known}"
        else:
            problem = cell_url_problem(url)
            if problem is None:
                continue
            message = f"entry point {url!r} of cell {cell!r} {problem}"
        line = parsed.line("spec", "routing", "entryPoints", cell)
        where = f"spec.routing.entryPoints.{cell}"
        problems.append(Problem(parsed.path, line, where, message))
    return problems
