"""The fleet at a glance: its revision, its cells by health, the latest rollout, and the
exposure of tenants to unbaked cells."""

from __future__ import annotations

from typing import Any

from cellops.controller.exposure import exposure_record
from cellops.query.base import ReadStore, latest_rollout
from cellops.query.history import revision_view
from cellops.query.rollouts import summary as rollout_summary


def fleet_summary(
    store: ReadStore, cell_list: list[dict[str, Any]], services: int | None = None
) -> dict[str, Any]:
    """`services`: how many services there are, when known (else counted in `cell_list`)."""
    by_health: dict[str, int] = {}
    for view in cell_list:
        by_health[view["health"]] = by_health.get(view["health"], 0) + 1
    latest = latest_rollout(store)
    seen = store.revisions(limit=1)
    current = store.setting("fleet.current")
    return {
        "revision": current,
        "cells": len(cell_list),
        "health": dict(sorted(by_health.items())),
        "services": services
        if services is not None
        else len({s["service"] for view in cell_list for s in view["services"]}),
        "rollout": rollout_summary(latest) if latest else None,
        "last_seen": revision_view(seen[0]) if seen else None,
        "exposure": exposure.as_dict() if (exposure := exposure_record(store)) else None,
    }
