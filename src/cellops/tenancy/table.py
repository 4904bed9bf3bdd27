"""The routing table: what the router needs and nothing else, versioned, as JSON.

The controller writes it (atomically, `cellops.router.tablefile`); routers, the HAProxy
map and the nginx export are made from it. Parsing is strict: a table that does not
parse is refused whole, and the router keeps the last good one.
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cellops.tenancy.checks import CELL_NAME, HEADER, REVISION, STATES, TENANT_ID, cell_url_problem
from cellops.tenancy.ring import Ring

FORMAT = 1
KEYS = ("header", "host", "path")


class TableError(ValueError):
    """A routing table that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class CellRoute:
    url: str  # http://host:port, no path
    state: str = "active"


@dataclass(frozen=True)
class RoutingTable:
    version: int
    revision: str
    cells: Mapping[str, CellRoute]
    tenants: Mapping[str, str]  # tenant -> cell
    ring: tuple[str, ...]  # the cells unknown tenants are hashed over
    key: str = "header"
    header: str = "X-Tenant-Id"
    weights: Mapping[str, int] = field(default_factory=dict)  # only weights other than 1
    _ring: Ring = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ring", Ring(self.ring))

    def lookup(self, tenant: str) -> str | None:
        """The tenant's cell: listed, or where the hash puts it; None without cells."""
        cell = self.tenants.get(tenant)
        return cell if cell is not None else self._ring.owner(tenant)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": self.version,
            "revision": self.revision,
            "key": self.key,
            "header": self.header,
            "cells": {n: {"url": c.url, "state": c.state} for n, c in sorted(self.cells.items())},
            "ring": list(self.ring),
            "tenants": dict(sorted(self.tenants.items())),
            "weights": dict(sorted(self.weights.items())),
        }
        return json.dumps(body, separators=(",", ":")).encode()


def parse_table(data: bytes) -> RoutingTable:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TableError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise TableError("expected a JSON object")
    if body.get("format") != FORMAT:
        raise TableError(f"format: expected {FORMAT}, found {body.get('format')!r}")
    version, cells_raw = body.get("version"), body.get("cells")
    tenants, ring = body.get("tenants"), body.get("ring")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise TableError(f"version: expected a whole number, found {version!r}")
    if not isinstance(cells_raw, dict) or not isinstance(tenants, dict):
        raise TableError("cells, tenants: expected objects")
    if not isinstance(ring, list):
        raise TableError("ring: expected a list of cells")
    cells = _cells(cells_raw)
    for tenant in tenants:
        if not TENANT_ID.match(tenant):
            raise TableError(f"tenants: {tenant!r} is not a tenant id")
    pairs = [*((f"tenants.{t}", c) for t, c in tenants.items()), *(("ring", c) for c in ring)]
    for where, cell in pairs:
        if not isinstance(cell, str) or cell not in cells:
            raise TableError(f"{where}: unknown cell {cell!r}")
    _check_ring(ring, cells)
    key, header, revision = _settings(body)
    weights = _weights(body.get("weights", {}))
    return RoutingTable(
        version=version,
        revision=revision,
        cells=cells,
        tenants=tenants,
        ring=tuple(ring),
        key=key,
        header=header,
        weights=weights,
    )


def _settings(body: dict[str, object]) -> tuple[str, str, str]:
    key, header = body.get("key", "header"), body.get("header", "X-Tenant-Id")
    revision = body.get("revision", "")
    if not isinstance(key, str) or key not in KEYS:
        raise TableError(f"key: expected one of {', '.join(KEYS)}, found {key!r}")
    if not isinstance(header, str) or not HEADER.match(header):
        raise TableError(f"header: expected a header name (letters, digits, '-'), found {header!r}")
    if not isinstance(revision, str) or not REVISION.match(revision):
        raise TableError(f"revision: expected a commit id, found {revision!r}")
    return key, header, revision


def _cells(raw: dict[object, object]) -> dict[str, CellRoute]:
    cells: dict[str, CellRoute] = {}
    for name, route in raw.items():
        if not isinstance(name, str) or not CELL_NAME.match(name):
            raise TableError(f"cells: {name!r} is not a cell name")
        if not isinstance(route, dict) or not isinstance(route.get("url"), str):
            raise TableError(f"cells.{name}: expected an object with a url")
        problem = cell_url_problem(route["url"])
        if problem is not None:
            raise TableError(f"cells.{name}.url {route['url']!r} {problem}")
        state = route.get("state", "active")
        if state not in STATES:
            raise TableError(f"cells.{name}.state: expected one of {', '.join(sorted(STATES))}")
        cells[name] = CellRoute(route["url"], state)
    return cells


def _check_ring(ring: list[str], cells: Mapping[str, CellRoute]) -> None:
    """The ring holds each cell once, and only cells that take new tenants: unlisted
    tenants hashed onto a draining or quarantined cell would go (or be refused) there, and
    an engine cannot carry a cell twice (one server name per backend)."""
    if len(set(ring)) != len(ring):
        raise TableError(f"ring: a cell is named more than once: {ring}")
    for cell in ring:
        if cells[cell].state != "active":
            raise TableError(f"ring: cell {cell!r} is {cells[cell].state}: only active cells")


def _weights(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise TableError("weights: expected an object")
    for tenant, weight in raw.items():  # a weighted tenant may be hashed, not listed
        if not isinstance(tenant, str) or not TENANT_ID.match(tenant):
            raise TableError(f"weights: {tenant!r} is not a tenant id")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise TableError(f"weights.{tenant}: expected a whole number, found {weight!r}")
    return raw
