"""The desired state of a fleet at one revision. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cellops.spec.cell import CellSpec, CellState
from cellops.spec.service import ServiceSpec


@dataclass(frozen=True)
class DesiredService:
    """One service as it should run in a cell.

    hash: identity of what runs: the effective spec, its code (app/ tree for local cells,
        manifests/ for Kubernetes cells) and the cell's backend settings. Equal hashes mean
        nothing needs to be done; the hash ignores key order and YAML formatting.
    depends_on: every service this one needs first, transitively, sorted.
    Cells with identical inputs share one instance.
    """

    name: str
    hash: str
    revision: str  # the revision this was rendered from
    spec: ServiceSpec
    code: str | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class DesiredCell:
    name: str
    labels: Mapping[str, str]
    state: CellState
    spec: CellSpec
    services: Mapping[str, DesiredService]


@dataclass(frozen=True)
class DesiredFleet:
    revision: str
    cells: Mapping[str, DesiredCell]
