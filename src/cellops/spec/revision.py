"""A revision: one commit of the fleet repo, parsed and validated.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cellops.model.problems import Problem
from cellops.spec.cell import CellDocument
from cellops.spec.fleet import FleetDocument
from cellops.spec.service import ServiceDocument, ServiceSpec
from cellops.spec.tenants import TenantsDocument


@dataclass(frozen=True)
class Variant:
    """One effective spec of a service and the cells that run it."""

    spec: ServiceSpec
    cells: frozenset[str]


@dataclass(frozen=True)
class Revision:
    """A valid revision.

    placement: for each service, the cells it runs in and its effective spec there (fleet
        defaults, then the service, then every override that selects the cell, in order).
        Cells with the same overrides share one spec object.
    variants: the same, grouped: each distinct effective spec of a service with its cells.
    trees: content hashes of `services/<name>/app` and `services/<name>/manifests`.
    tenants: the Tenants documents (tenants/*.yaml) by path; placement is
        `cellops.tenancy.fleet.routing_table`.
    """

    id: str
    fleet: FleetDocument
    cells: Mapping[str, CellDocument]
    services: Mapping[str, ServiceDocument]
    placement: Mapping[str, Mapping[str, ServiceSpec]]
    variants: Mapping[str, tuple[Variant, ...]]
    trees: Mapping[str, str]
    warnings: tuple[Problem, ...] = ()
    message: str = ""
    committed_at: float | None = None  # the commit's time, when the source knows it
    tenants: Mapping[str, TenantsDocument] = field(default_factory=dict)  # by file path

    def app_tree(self, service: str) -> str | None:
        return self.trees.get(f"services/{service}/app")

    def manifests_tree(self, service: str) -> str | None:
        return self.trees.get(f"services/{service}/manifests")
