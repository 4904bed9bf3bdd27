"""Desired state as the store keeps it: a service as it was given to a cell, and the cell
itself, in JSON. A rollback and the supervision of a cell read these, never an old commit,
so neither depends on Git still holding the revisions the ledger names. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cellops.render.desired import DesiredCell, DesiredService
from cellops.spec.cell import CellSpec, CellState
from cellops.spec.service import ServiceSpec


def service_json(service: DesiredService) -> str:
    return json.dumps(
        {
            "name": service.name,
            "hash": service.hash,
            "revision": service.revision,
            "code": service.code,
            "dependsOn": list(service.depends_on),
            "spec": service.spec.model_dump(mode="json", by_alias=True),
        },
        sort_keys=True,
    )


def service_from_json(text: str) -> DesiredService:
    data = json.loads(text)
    return DesiredService(
        name=str(data["name"]),
        hash=str(data["hash"]),
        revision=str(data["revision"]),
        spec=ServiceSpec.model_validate(data["spec"]),
        code=data["code"],
        depends_on=tuple(data["dependsOn"]),
    )


def cell_json(cell: DesiredCell) -> str:
    """The cell without its services (they are kept per service)."""
    return json.dumps(
        {
            "name": cell.name,
            "labels": dict(cell.labels),
            "state": str(cell.state),
            "spec": cell.spec.model_dump(mode="json", by_alias=True),
        },
        sort_keys=True,
    )


def cell_from_json(text: str, services: Mapping[str, DesiredService]) -> DesiredCell:
    data = json.loads(text)
    return DesiredCell(
        name=str(data["name"]),
        labels=dict(data["labels"]),
        state=CellState(data["state"]),
        spec=CellSpec.model_validate(data["spec"]),
        services=dict(services),
    )


class StoredStates:
    """Parsed desired states, cached by their text: supervision reads every cell each
    second, and the same text always parses to the same value."""

    def __init__(self, limit: int = 4096) -> None:
        self._services: dict[str, DesiredService] = {}
        self._cells: dict[str, DesiredCell] = {}
        self._limit = limit

    def service(self, text: str) -> DesiredService:
        found = self._services.get(text)
        if found is None:
            if len(self._services) >= self._limit:
                self._services.clear()
            found = self._services[text] = service_from_json(text)
        return found

    def cell(self, text: str, services: Mapping[str, DesiredService]) -> DesiredCell:
        base = self._cells.get(text)
        if base is None:
            if len(self._cells) >= self._limit:
                self._cells.clear()
            base = self._cells[text] = cell_from_json(text, {})
        return DesiredCell(base.name, base.labels, base.state, base.spec, dict(services))
