"""A cell in brief: what the read commands show of where a desired cell lives.

The controller keeps the brief of every cell of the revision it accepts (`cellops.query`
reads it), so that `cellops status` and `get` list cells not yet applied without reading
Git or loading the spec. Pure: no I/O. The shape is the part of an applied cell's JSON
that the read models read: labels, backend (type, address or namespace, context), and the
names of its services.
"""

from __future__ import annotations

from typing import Any

from cellops.render.desired import DesiredCell, DesiredFleet
from cellops.render.kubernetes import namespace_of
from cellops.spec.cell import KubernetesBackend, LocalBackend


def cell_brief(cell: DesiredCell) -> dict[str, Any]:
    backend = cell.spec.backend
    if isinstance(backend, LocalBackend):
        where: dict[str, Any] = {"type": "local", "address": backend.address}
    else:
        assert isinstance(backend, KubernetesBackend)
        namespace = namespace_of(cell)
        where = {"type": "kubernetes", "namespace": namespace, "context": backend.context}
    return {
        "labels": dict(cell.labels),
        "spec": {"backend": where},
        "services": sorted(cell.services),
    }


def fleet_brief(fleet: DesiredFleet) -> dict[str, Any]:
    """Every cell's brief, with the revision they are of."""
    return {"revision": fleet.revision, "cells": {n: cell_brief(c) for n, c in fleet.cells.items()}}
