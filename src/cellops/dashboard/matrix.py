"""The fleet overview's data: cells grouped by region and ring with their health counts,
and one page of the cells x services matrix (pure: read models in, dicts out).

At 1,000 cells x 50 services the page shows every group's counts, and the matrix a page
of cells at a time (`limit`, default 100), filtered by region, ring or health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAGE = 100
HEALTHS = ("degraded", "missing", "unknown", "progressing", "not-applied", "healthy")


def _key(cell: dict[str, Any]) -> tuple[str, str, str]:
    return (cell.get("region") or "-", cell.get("ring") or "-", cell["name"])


def groups(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (region, ring): its cells' count and how many are in each health."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in cells:
        region, ring, _ = _key(cell)
        group = found.setdefault(
            (region, ring), {"region": region, "ring": ring, "cells": 0, "health": {}}
        )
        group["cells"] += 1
        group["health"][cell["health"]] = group["health"].get(cell["health"], 0) + 1
    for group in found.values():
        group["health"] = {h: group["health"][h] for h in HEALTHS if h in group["health"]}
    return [found[k] for k in sorted(found)]


def matrix(
    cells: Sequence[dict[str, Any]],
    *,
    region: str | None = None,
    ring: str | None = None,
    health: str | None = None,
    offset: int = 0,
    limit: int = PAGE,
) -> dict[str, Any]:
    """One page of the matrix: the columns (every service of the fleet, so they stay put
    from page to page), and the page's cells grouped by region and ring, each row a
    square per column (None where the cell does not run that service)."""
    services = sorted({s["service"] for cell in cells for s in cell["services"]})
    found = sorted(
        (
            c
            for c in cells
            if (region is None or (c.get("region") or "-") == region)
            and (ring is None or (c.get("ring") or "-") == ring)
            and (health is None or c["health"] == health)
        ),
        key=_key,
    )
    offset, limit = max(0, offset), max(1, limit)
    rows: list[dict[str, Any]] = []
    for cell in found[offset : offset + limit]:
        region_of, ring_of, _ = _key(cell)
        if not rows or (rows[-1]["region"], rows[-1]["ring"]) != (region_of, ring_of):
            rows.append({"region": region_of, "ring": ring_of, "cells": []})
        by_service = {s["service"]: s for s in cell["services"]}
        rows[-1]["cells"].append(
            {
                "name": cell["name"],
                "health": cell["health"],
                "squares": [_square(by_service.get(name)) for name in services],
            }
        )
    return {
        "services": services,
        "groups": rows,
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "previous": max(0, offset - limit) if offset > 0 else None,
        "next": offset + limit if offset + limit < len(found) else None,
    }


def _square(service: dict[str, Any] | None) -> dict[str, Any] | None:
    if service is None:
        return None
    revision = service["revision"]
    return {
        "health": service["health"],
        "revision": revision[:12] if revision else "-",
        "since": service["since"] or "-",
        "reason": service["reason"],
    }
