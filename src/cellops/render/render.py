"""Render a revision into the desired state of every cell.

Work is shared: the workload hash is computed once per effective spec (cells with the same
overrides share it) and combined once per distinct backend setting, so a fleet of 1,000
cells costs a few hundred hashes, not one per cell and service.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from cellops.render.desired import DesiredCell, DesiredFleet, DesiredService
from cellops.render.hashing import canonical_json, content_hash
from cellops.spec.cell import CellSpec, KubernetesBackend, LocalBackend
from cellops.spec.revision import Revision
from cellops.spec.service import ServiceSpec

# Placement and relations, not what runs: changing them alone restarts nothing.
_NOT_WORKLOAD = {"cells", "overrides", "contracts", "depends_on"}


def render(revision: Revision) -> DesiredFleet:
    closure = _dependency_closure(
        {name: doc.spec.depends_on for name, doc in revision.services.items()}
    )
    # Cells with equal backend settings form one group; usually there are very few.
    groups: dict[str, tuple[CellSpec, set[str]]] = {}
    for cell_name, document in revision.cells.items():
        groups.setdefault(_backend_key(document.spec), (document.spec, set()))[1].add(cell_name)
    services: dict[str, dict[str, DesiredService]] = {name: {} for name in revision.cells}
    for name, variants in revision.variants.items():
        for variant in variants:
            workload = _workload_hash(variant.spec)
            for backend, (cell_spec, members) in groups.items():
                cells = variant.cells & members
                if not cells:
                    continue
                code = _code(revision, name, cell_spec)
                desired = DesiredService(
                    name=name,
                    hash=content_hash(workload, code or "", backend),
                    revision=revision.id,
                    spec=variant.spec,
                    code=code,
                    depends_on=closure[name],
                )
                for member in cells:
                    services[member][name] = desired
    return DesiredFleet(
        revision=revision.id,
        cells={
            name: DesiredCell(
                name=name,
                labels=dict(cell.metadata.labels),
                state=cell.spec.state,
                spec=cell.spec,
                services=services[name],
            )
            for name, cell in revision.cells.items()
        },
    )


def _workload_hash(spec: ServiceSpec) -> str:
    data = spec.model_dump(mode="json", exclude=_NOT_WORKLOAD, by_alias=True)
    return content_hash(canonical_json(data))


def _backend_key(cell: CellSpec) -> str:
    """What of the cell a service's hash covers. For Kubernetes cells also the capacity:
    its quota and limits are applied with the services (a capacity change reaches the
    cluster with them; the pods do not restart, their template is unchanged)."""
    key: dict[str, object] = {"backend": cell.backend.model_dump(mode="json", by_alias=True)}
    if isinstance(cell.backend, KubernetesBackend):
        key["capacity"] = cell.capacity.model_dump(mode="json", by_alias=True)
    return canonical_json(key)


def _code(revision: Revision, service: str, cell: CellSpec) -> str | None:
    if isinstance(cell.backend, LocalBackend):
        return revision.app_tree(service)
    return revision.manifests_tree(service)


def _dependency_closure(graph: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """Every service each one needs, transitively. The spec layer has refused cycles."""
    done: dict[str, frozenset[str]] = {}

    def visit(node: str, trail: frozenset[str]) -> frozenset[str]:
        if node in done:
            return done[node]
        found: set[str] = set()
        for dep in graph.get(node, []):
            if dep in graph and dep not in trail:
                found.add(dep)
                found |= visit(dep, trail | {dep})
        done[node] = frozenset(found)
        return done[node]

    return {node: tuple(sorted(visit(node, frozenset({node})))) for node in graph}
