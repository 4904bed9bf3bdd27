"""Placement: every tenant in exactly one cell, by pin, canary ring or the hash ring.

- `active` cells take tenants; `draining` and `quarantined` cells take none (their
  tenants go to the cells the ring walks to next); `retired` cells must be empty.
- Pins go first and count against `capacity.maxTenants`; a pin to a cell that takes no
  tenants, or that does not exist, is an error.
- Canary tenants are placed by the hash over the canary ring's active cells.
- Everyone else is placed by the hash over the active cells; a cell over its capacity
  keeps its tenants first by id and the rest walk the ring to the next cell with room
  (consistent hashing with bounded loads), so the result does not depend on input order.
- A new tenant (one the `previous` table does not list) is not placed on a cell whose
  revision has not baked (`unbaked`): its walk skips those cells, unless every cell is
  unbaked (the fleet's first rollout). Existing tenants stay where the hash keeps them;
  canary tenants live in the canary ring whatever it runs.
Pure: no I/O.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cellops.tenancy.ring import MASK, MIX, Ring

ACCEPTING = "active"
RETIRED = "retired"


@dataclass(frozen=True)
class CellSlot:
    name: str
    state: str = ACCEPTING  # active, draining, quarantined, retired
    max_tenants: int | None = None
    canary: bool = False


@dataclass(frozen=True)
class TenantEntry:
    id: str
    pin: str | None = None
    canary: bool = False
    weight: int = 1


@dataclass(frozen=True)
class PlacementError:
    tenant: str | None  # None: about the fleet as a whole
    message: str


@dataclass
class Placement:
    assignment: dict[str, str] = field(default_factory=dict)
    errors: list[PlacementError] = field(default_factory=list)


@dataclass(frozen=True)
class Avoid:
    """New tenants stay off `cells` (unbaked); tenants in `existing` may stay there."""

    cells: frozenset[str] = frozenset()
    existing: Collection[str] = frozenset()

    def keeps_off(self, tenant: str) -> bool:
        return bool(self.cells) and tenant not in self.existing


def place(
    cells: Sequence[CellSlot],
    tenants: Iterable[TenantEntry],
    *,
    unbaked: Collection[str] = (),
    previous: Mapping[str, str] | None = None,
) -> Placement:
    """Every tenant's cell. `unbaked`: cells whose revision has not baked; `previous`: the
    assignment of the table in use (its tenants are not new)."""
    by_name = {c.name: c for c in cells}
    result = Placement()
    counts: dict[str, int] = defaultdict(int)
    hashed: list[str] = []
    canary: list[str] = []
    for tenant in tenants:
        if tenant.pin is not None:
            _pin(tenant, by_name, counts, result)
        elif tenant.canary:
            canary.append(tenant.id)
        else:
            hashed.append(tenant.id)
    active = [c.name for c in cells if c.state == ACCEPTING]
    ring_cells = [c.name for c in cells if c.state == ACCEPTING and c.canary]
    if canary and not ring_cells:
        result.errors.append(
            PlacementError(canary[0], "canary tenant, but no active cell is in the canary ring")
        )
    capacity = {c.name: c.max_tenants for c in cells}
    avoid = Avoid(frozenset(unbaked) & set(active), previous or {})
    if avoid.cells >= set(active):  # nowhere baked: the fleet's first rollout
        avoid = Avoid()
    for group, members, keep_off in ((ring_cells, canary, Avoid()), (active, hashed, avoid)):
        if group and members:
            _place_hashed(Ring(group), members, capacity, counts, result, avoid=keep_off)
    if hashed and not active:
        result.errors.append(PlacementError(hashed[0], "no active cell takes tenants"))
    return result


def _pin(
    tenant: TenantEntry, cells: dict[str, CellSlot], counts: dict[str, int], result: Placement
) -> None:
    cell = cells.get(tenant.pin or "")
    if cell is None:
        known = ", ".join(sorted(cells)) or "none"
        message = f"pinned to unknown cell {tenant.pin!r}: expected one of {known}"
    elif cell.state == RETIRED:
        message = (
            f"pinned to retired cell {cell.name!r}: a retired cell must be empty of"
            " tenants: pin it to an active cell, or remove the pin"
        )
    elif cell.state != ACCEPTING:
        message = f"pinned to {cell.state} cell {cell.name!r}: only an active cell takes tenants"
    elif cell.max_tenants is not None and counts[cell.name] >= cell.max_tenants:
        message = (
            f"pinned to cell {cell.name!r}, which is full: its capacity.maxTenants is"
            f" {cell.max_tenants}"
        )
    else:
        counts[cell.name] += 1
        result.assignment[tenant.id] = cell.name
        return
    result.errors.append(PlacementError(tenant.id, message))


def _place_hashed(
    ring: Ring,
    tenants: list[str],
    capacity: dict[str, int | None],
    counts: dict[str, int],
    result: Placement,
    *,
    avoid: Avoid,
) -> None:
    owners = _owners(ring, tenants)
    if avoid.cells:
        owners = [
            _baked(ring, t, o, avoid) if o in avoid.cells else o
            for t, o in zip(tenants, owners, strict=True)
        ]
    placed = dict(zip(tenants, owners, strict=True))  # one C-level pass: the hot path
    spill = _spill(tenants, owners, _rooms(owners, capacity, counts))
    for tenant in spill:
        del placed[tenant]
    if result.assignment:
        result.assignment.update(placed)
    else:
        result.assignment = placed
    for tenant in spill:
        home = _home(ring, tenant, capacity, counts, avoid)
        if home is None:
            total = sum(capacity[c] or 0 for c in ring.cells)
            result.errors.append(
                PlacementError(
                    tenant,
                    f"no cell has room: {len(tenants)} tenants for the"
                    f" {len(ring.cells)} cell(s) that take them, whose capacity.maxTenants"
                    f" add up to {total}",
                )
            )
            return
        counts[home] += 1
        result.assignment[tenant] = home


def _rooms(
    owners: list[str], capacity: dict[str, int | None], counts: dict[str, int]
) -> dict[str, int]:
    """The cells the hash over-fills, with the room they have; counts what each keeps."""
    rooms: dict[str, int] = {}
    for cell, load in Counter(owners).items():
        limit = capacity[cell]
        room = None if limit is None else max(0, limit - counts[cell])
        if room is not None and load > room:
            rooms[cell] = room
        counts[cell] += min(load, rooms.get(cell, load))
    return rooms


def _spill(tenants: list[str], owners: list[str], rooms: dict[str, int]) -> list[str]:
    """The tenants over-full cells give up, sorted: a cell keeps its first by id."""
    if not rooms:
        return []
    members: dict[str, list[str]] = defaultdict(list)
    for tenant, owner in zip(tenants, owners, strict=True):
        if owner in rooms:
            members[owner].append(tenant)
    return sorted(t for cell, room in rooms.items() for t in sorted(members[cell])[room:])


def _baked(ring: Ring, tenant: str, owner: str, avoid: Avoid) -> str:
    """A new tenant's first baked cell on its walk; an existing one keeps its owner."""
    if not avoid.keeps_off(tenant):
        return owner
    return next(c for c in ring.walk(tenant) if c not in avoid.cells)


def _home(
    ring: Ring, tenant: str, capacity: dict[str, int | None], counts: dict[str, int], avoid: Avoid
) -> str | None:
    """The first cell with room on the tenant's walk: a baked one if it is new, else any."""
    first = None
    for cell in ring.walk(tenant):
        if not _has_room(cell, capacity, counts):
            continue
        if cell not in avoid.cells or not avoid.keeps_off(tenant):
            return cell
        first = first or cell
    return first


def _has_room(cell: str, capacity: dict[str, int | None], counts: dict[str, int]) -> bool:
    limit = capacity[cell]
    return limit is None or counts[cell] < limit


def _owners(ring: Ring, tenants: list[str]) -> list[str]:
    """`ring.owner` for many keys at once: the hot loop of placing a million tenants."""
    hashes, owners = ring.points()
    size, crc, mix, mask = len(owners), zlib.crc32, MIX, MASK
    buckets, shift = ring.buckets, ring.shift
    return [
        buckets[(h := (crc(t.encode()) * mix) & mask) >> shift]
        or owners[bisect_right(hashes, h) % size]
        for t in tenants
    ]
