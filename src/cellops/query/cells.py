"""Cells and services: what the ledger says each cell was given, what the cell reports,
and where it lives (address or namespace), every cell of the fleet included, also those
the current revision names that were never applied yet."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cellops.health import Health, worst
from cellops.query.base import Observe, ReadStore, iso, latest_rollout
from cellops.store.briefs import BriefRow
from cellops.store.records import CellStep

if TYPE_CHECKING:
    from typing import TypeAlias

    from cellops.backends.base import CellObservation
    from cellops.render import DesiredCell, DesiredFleet

    # The current revision, rendered, or as the briefs the controller kept of its cells
    # (`cellops.render.brief`: what `status` reads without loading the spec).
    Target: TypeAlias = DesiredCell | Mapping[str, Any]
    Wanted: TypeAlias = DesiredFleet | Mapping[str, Mapping[str, Any]]

NOT_APPLIED = "not-applied"  # the health shown for a service the cell was never given


def cells(
    store: ReadStore, observe: Observe | None, desired: Wanted | None = None
) -> list[dict[str, Any]]:
    """Every cell: in the ledger, or in the current revision (`desired`), by name."""
    by_cell = rows_by_cell(store)
    wanted = _wanted(desired)
    applied = store.applied_cells()
    latest = latest_rollout(store)
    steps = store.cell_steps(latest.id) if latest else {}
    return [
        cell_view(
            name,
            by_cell.get(name, []),
            wanted.get(name),
            applied.get(name),
            observe,
            step=None if latest is None or name not in steps else (latest.id, steps[name]),
        )
        for name in sorted(set(by_cell) | set(wanted))
    ]


def cell(
    store: ReadStore, observe: Observe | None, name: str, desired: Wanted | None = None
) -> dict[str, Any] | None:
    """One cell, or None when neither the ledger nor the current revision knows it."""
    rows = store.ledger_brief(name)
    target = _wanted(desired).get(name)
    if not rows and target is None:
        return None
    latest = latest_rollout(store)
    steps = store.cell_steps(latest.id) if latest else {}
    step = None if latest is None or name not in steps else (latest.id, steps[name])
    return cell_view(name, rows, target, store.cell_states(name)[0], observe, step=step)


def services(cell_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per service: how many cells run it, at which revisions, and how healthy."""
    found: dict[str, dict[str, Any]] = {}
    for view in cell_list:
        for row in view["services"]:
            entry = found.setdefault(
                row["service"],
                {"service": row["service"], "cells": 0, "revisions": {}, "health": {}},
            )
            entry["cells"] += 1
            revision = row["revision"] or "-"
            entry["revisions"][revision] = entry["revisions"].get(revision, 0) + 1
            entry["health"][row["health"]] = entry["health"].get(row["health"], 0) + 1
    return [found[name] for name in sorted(found)]


def cell_view(
    name: str,
    rows: list[BriefRow],
    target: Target | None,
    applied: str | None,
    observe: Observe | None,
    *,
    step: tuple[int, tuple[int, CellStep, str]] | None = None,
) -> dict[str, Any]:
    """`applied`: the cell as last applied (JSON), where `target` (the current revision's)
    does not say where it lives."""
    seen = observe(name) if observe is not None and rows else None
    return seen_view(name, rows, target, applied, seen, step=step)


def seen_view(
    name: str,
    rows: list[BriefRow],
    target: Target | None,
    applied: str | None,
    seen: CellObservation | None,
    *,
    step: tuple[int, tuple[int, CellStep, str]] | None = None,
) -> dict[str, Any]:
    """`cell_view` with the cell already observed (`seen`; None: not shown)."""
    brief = _brief(target)
    labels, place = _place(name, brief, applied)
    views = [_service(row, seen) for row in rows]
    given = {row.service for row in rows}
    if brief is not None:
        views += [_never_applied(name, s) for s in brief["services"] if s not in given]
    healths = [Health(v["health"]) for v in views if v["health"] != NOT_APPLIED]
    return {
        "name": name,
        "labels": labels,
        "region": labels.get("region"),
        "ring": labels.get("ring"),
        **place,
        "applied": bool(rows),
        "reachable": None if seen is None else seen.reachable,
        "reason": "" if seen is None else seen.reason,
        "health": str(worst(healths)) if healths else NOT_APPLIED,
        "services": views,
        "rollout": None
        if step is None
        else {"id": step[0], "wave": step[1][0], "step": str(step[1][1]), "reason": step[1][2]},
    }


def rows_by_cell(store: ReadStore) -> dict[str, list[BriefRow]]:
    by_cell: dict[str, list[BriefRow]] = {}
    for row in store.ledger_brief():
        by_cell.setdefault(row.cell, []).append(row)
    return by_cell


def _service(row: BriefRow, seen: CellObservation | None) -> dict[str, Any]:
    observed = seen.services.get(row.service) if seen is not None else None
    if seen is None or not seen.reachable:
        health = Health.UNKNOWN
    elif observed is None:
        health = Health.MISSING if row.applied_hash else Health.HEALTHY
    elif observed.hash != row.applied_hash and observed.health is Health.HEALTHY:
        health = Health.PROGRESSING  # healthy, but not yet at what it was given
    else:
        health = observed.health
    return {
        "service": row.service,
        "revision": row.applied_rev,
        "good": row.good_rev,
        "proven": row.applied_hash is not None and row.applied_hash == row.good_hash,
        "health": str(health),
        "ready": observed.ready if observed else 0,
        "desired": observed.desired if observed else 0,
        "restarts": observed.restarts if observed else 0,
        "reason": observed.reason if observed else ("" if seen is None else seen.reason),
        "since": iso(row.updated_at),
    }


def _never_applied(cell: str, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "revision": None,
        "good": None,
        "proven": False,
        "health": NOT_APPLIED,
        "ready": 0,
        "desired": 0,
        "restarts": 0,
        "reason": f"not yet given to {cell}",
        "since": None,
    }


def read_briefs(kept: str | None, current: str | None) -> dict[str, Mapping[str, Any]] | None:
    """The briefs the controller kept (`render.brief.fleet_brief` as JSON), by cell; None
    unless they are of the `current` revision and every one has the shape the views read
    (an older controller kept none; a damaged or edited value is not trusted): the
    caller then renders the revision instead."""
    try:
        found = json.loads(kept) if kept and current else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or found.get("revision") != current:
        return None
    briefs = found.get("cells")
    if not isinstance(briefs, dict) or not all(_well_formed(b) for b in briefs.values()):
        return None
    return briefs


def _well_formed(brief: object) -> bool:
    if not isinstance(brief, dict):
        return False
    labels, spec, services = brief.get("labels"), brief.get("spec"), brief.get("services")
    backend = spec.get("backend") if isinstance(spec, dict) else None
    if not isinstance(backend, dict) or backend.get("type") not in ("local", "kubernetes"):
        return False
    where = [backend.get(k) for k in ("address", "namespace", "context")]
    return (
        isinstance(labels, dict)
        and all(isinstance(v, str) for v in (*labels, *labels.values()))
        and isinstance(services, list)
        and all(isinstance(s, str) for s in services)
        and all(w is None or isinstance(w, str) for w in where)
    )


def _wanted(desired: Wanted | None) -> Mapping[str, Target]:
    if desired is None:
        return {}
    return desired if isinstance(desired, Mapping) else desired.cells


def _brief(target: Target | None) -> Mapping[str, Any] | None:
    if target is None or isinstance(target, Mapping):
        return target
    from cellops.render.brief import cell_brief

    return cell_brief(target)


def _place(
    name: str, brief: Mapping[str, Any] | None, applied: str | None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The cell's labels, and where it lives: its backend, address or namespace, from the
    current revision (`brief`) or else as last applied (JSON)."""
    data: Mapping[str, Any] = (
        brief if brief is not None else (json.loads(applied) if applied else {})
    )
    spec = data.get("spec", {}).get("backend", {})
    labels = dict(data.get("labels", {}))
    if spec.get("type") == "kubernetes":
        namespace = spec.get("namespace") or f"cell-{name}"
        return labels, _where("kubernetes", namespace=namespace, context=spec.get("context"))
    return labels, _where("local" if spec else None, address=spec.get("address"))


def _where(
    backend: str | None,
    *,
    address: str | None = None,
    namespace: str | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    return {"backend": backend, "address": address, "namespace": namespace, "context": context}
