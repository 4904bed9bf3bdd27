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
    cells: dict[str, CellRoute] = {}
    for name, route in cells_raw.items():
        if not isinstance(route, dict) or not isinstance(route.get("url"), str):
            raise TableError(f"cells.{name}: expected an object with a url")
        cells[name] = CellRoute(route["url"], str(route.get("state", "active")))
    pairs = [*((f"tenants.{t}", c) for t, c in tenants.items()), *(("ring", c) for c in ring)]
    for where, cell in pairs:
        if not isinstance(cell, str) or cell not in cells:
            raise TableError(f"{where}: unknown cell {cell!r}")
    key = body.get("key", "header")
    if key not in KEYS:
        raise TableError(f"key: expected one of {', '.join(KEYS)}, found {key!r}")
    return RoutingTable(
        version=version,
        revision=str(body.get("revision", "")),
        cells=cells,
        tenants=tenants,
        ring=tuple(ring),
        key=key,
        header=str(body.get("header", "X-Tenant-Id")),
        weights=body.get("weights") or {},
    )
