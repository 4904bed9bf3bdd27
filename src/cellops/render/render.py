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
from cellops.render.own import OwnTrees
from cellops.spec.cell import CellSpec, KubernetesBackend, LocalBackend, with_address
from cellops.spec.revision import Revision
from cellops.spec.service import ServiceSpec

# Placement and relations, not what runs: changing them alone restarts nothing.
_NOT_WORKLOAD = {"cells", "overrides", "contracts", "depends_on", "image_policy"}


def render(revision: Revision) -> DesiredFleet:
    closure = _dependency_closure(
        {name: doc.spec.depends_on for name, doc in revision.services.items()}
    )
    specs = _cell_specs(revision)
    fleet = revision.fleet.metadata.name
    groups = _backend_groups(revision, specs, fleet)
    # Cells that run the same services the same way form a class and share one mapping of
    # services: classes are refined with set operations, one variant at a time.
    classes: list[tuple[frozenset[str], int, list[DesiredService]]] = [
        (members, group, []) for group, (_, _, members) in enumerate(groups)
    ]
    for name, variants in revision.variants.items():
        for variant in variants:
            workload = _workload_hash(variant.spec)
            made: dict[int, DesiredService] = {}
            refined = []
            for members, group, found in classes:
                inside = members & variant.cells
                if not inside:
                    refined.append((members, group, found))
                    continue
                if group not in made:
                    key, cell_spec, _ = groups[group]
                    code = _code(revision, name, cell_spec)
                    made[group] = DesiredService(
                        name=name,
                        hash=content_hash(workload, code or "", key),
                        revision=revision.id,
                        spec=variant.spec,
                        code=code,
                        depends_on=closure[name],
                    )
                refined.append((inside, group, [*found, made[group]]))
                if len(inside) < len(members):
                    refined.append((members - inside, group, found))
            classes = refined
    services: dict[str, Mapping[str, DesiredService]] = {}
    for members, _, found in classes:
        shared = {desired.name: desired for desired in found}
        services.update(dict.fromkeys(members, shared))
    return DesiredFleet(
        revision=revision.id,
        cells={
            name: DesiredCell(
                name=name,
                labels=cell.metadata.labels,
                state=cell.spec.state,
                spec=with_address(fleet, name, specs[name]),
                services=services[name],
            )
            for name, cell in revision.cells.items()
        },
    )


def _cell_specs(revision: Revision) -> dict[str, CellSpec]:
    """Each cell's spec with the fleet's Kubernetes defaults filled in (computed once per
    distinct spec: most cells share theirs)."""
    settings = revision.fleet.spec.kubernetes
    done: dict[CellSpec, CellSpec] = {}
    return {
        name: done.get(cell.spec) or done.setdefault(cell.spec, settings.cell_spec(cell.spec))
        for name, cell in revision.cells.items()
    }


def _backend_groups(
    revision: Revision, specs: Mapping[str, CellSpec], fleet: str
) -> list[tuple[str, CellSpec, frozenset[str]]]:
    """Cells with equal backend settings (usually very few groups): (key, spec, cells)."""
    keys: dict[object, str] = {}
    groups: dict[str, tuple[CellSpec, set[str]]] = {}
    for cell_name in revision.cells:
        spec = specs[cell_name]
        backend = spec.backend
        settings = (backend, spec.capacity) if isinstance(backend, KubernetesBackend) else backend
        key = keys.get(settings)
        if key is None:
            key = keys[settings] = _backend_key(spec, fleet)
        groups.setdefault(key, (spec, set()))[1].add(cell_name)
    return [(key, spec, frozenset(members)) for key, (spec, members) in groups.items()]


def _workload_hash(spec: ServiceSpec) -> str:
    data = spec.model_dump(mode="json", exclude=_NOT_WORKLOAD, by_alias=True)
    return content_hash(canonical_json(data))


def _backend_key(cell: CellSpec, fleet: str) -> str:
    """What of the cell a service's hash covers. For Kubernetes cells also the capacity:
    its quota and limits are applied with the services (a capacity change reaches the
    cluster with them; the pods do not restart, their template is unchanged). For a local
    cell with a derived address, the fleet's name: the address derives from it."""
    key: dict[str, object] = {"backend": cell.backend.model_dump(mode="json", by_alias=True)}
    if isinstance(cell.backend, KubernetesBackend):
        key["capacity"] = cell.capacity.model_dump(mode="json", by_alias=True)
    elif cell.backend.address is None:
        key["fleet"] = fleet
    return canonical_json(key)


def _code(revision: Revision, service: str, cell: CellSpec) -> str | None:
    if isinstance(cell.backend, LocalBackend):
        return revision.app_tree(service)
    return OwnTrees.of(revision, service).code()  # manifests/, chart/, values/


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
