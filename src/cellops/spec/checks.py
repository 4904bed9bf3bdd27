"""Rules that span documents: image policy, backends, dependencies, contracts, addresses.

Each check returns problems; none stops the others, so a user sees every error at once.
Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from cellops.model.problems import Problem
from cellops.spec.cell import (
    CellDocument,
    CellSpec,
    KubernetesBackend,
    LocalBackend,
    local_address,
)
from cellops.spec.chart_checks import chart_problems
from cellops.spec.documents import Parsed
from cellops.spec.fleet import FleetDocument
from cellops.spec.image_checks import check_images
from cellops.spec.messages import field_path, warning
from cellops.spec.placement import Placement
from cellops.spec.revision import Variant
from cellops.spec.selection import CellIndex
from cellops.spec.service import ServiceDocument, ServiceSpec
from cellops.spec.yamldoc import PathItem


@dataclass(frozen=True)
class Context:
    fleet: Parsed[FleetDocument]
    cells: Mapping[str, Parsed[CellDocument]]
    services: Mapping[str, Parsed[ServiceDocument]]
    placement: Placement
    variants: Mapping[str, tuple[Variant, ...]]
    trees: Mapping[str, str]
    index: CellIndex
    previous_providers: Mapping[str, Mapping[str, str]]  # cell -> contract -> service

    @cached_property
    def local_cells(self) -> frozenset[str]:
        return frozenset(
            name
            for name, parsed in self.cells.items()
            if parsed.model is not None and isinstance(parsed.model.spec.backend, LocalBackend)
        )

    @cached_property
    def cells_of(self) -> dict[str, frozenset[str]]:
        """The cells each service runs in, as sets: the rules below are set operations,
        never loops over cells x services (thousands of cells, dozens of services)."""
        return {name: frozenset(cells) for name, cells in self.placement.items()}

    def service(self, name: str) -> ServiceDocument:
        model = self.services[name].model
        assert model is not None
        return model

    def problem(self, service: str, where: tuple[PathItem, ...], message: str) -> Problem:
        parsed = self.services[service]
        return Problem(parsed.path, parsed.line(*where), field_path(where), message)


def run_checks(ctx: Context) -> list[Problem]:
    problems: list[Problem] = []
    for check in (
        check_service_ports,
        check_images,
        check_backends,
        check_dependencies,
        check_contracts,
        check_addresses,
        check_waves,
    ):
        problems.extend(check(ctx))
    return problems


def check_backends(ctx: Context) -> list[Problem]:
    """Local cells run `run` from app/, or `image` as containers when there is no `run`;
    Kubernetes cells run `image`, or only what the service's manifests/ and chart hold (a
    manifests-only service)."""
    local = ctx.local_cells
    problems = []
    for name, variants in ctx.variants.items():
        own = _own_objects(ctx, name)
        missing_run: list[str] = []
        missing_image: list[str] = []
        for variant in variants:
            if variant.spec.run is None and variant.spec.image is None:
                missing_run += variant.cells & local
            if variant.spec.image is None and not own and variant.spec.chart is None:
                missing_image += variant.cells - local
        if missing_run:
            problems.append(ctx.problem(name, ("spec",), _no_run(ctx, name, missing_run)))
        elif _runs_code(variants, local) and f"services/{name}/app" not in ctx.trees:
            message = (
                f"runs in local cells but services/{name}/app/ does not exist: expected"
                " the service's code there"
            )
            problems.append(ctx.problem(name, ("spec", "run"), message))
        if missing_image:
            message = (
                f"runs in kubernetes cells ({_few(sorted(missing_image))}) but has no image:"
                f" expected spec.image, or its workloads in services/{name}/manifests/ or"
                " a spec.chart"
            )
            problems.append(ctx.problem(name, ("spec",), message))
        problems += chart_problems(ctx, name, variants)
        problems += _container_tags(ctx, name, variants)
    return problems


def _runs_code(variants: tuple[Variant, ...], local: frozenset[str]) -> bool:
    return any(v.spec.run is not None and not local.isdisjoint(v.cells) for v in variants)


def _container_tags(ctx: Context, name: str, variants: tuple[Variant, ...]) -> list[Problem]:
    """A local cell pulls an image by the digest it was verified at, never by a tag."""
    fleet = ctx.fleet.model
    fleet_policy = fleet.spec.image_policy if fleet is not None else None
    policy = ctx.service(name).spec.image_policy or fleet_policy
    if policy is None or policy.resolve_tags:
        return []
    for variant in variants:
        image, cells = variant.spec.image, variant.cells & ctx.local_cells
        if variant.spec.run is None and image and cells and "@" not in image:
            message = (
                f"runs as containers in local cells ({_few(sorted(cells))}) but {image} is"
                " not pinned by a digest: local cells run images by digest only; expected"
                " image@sha256:<digest>, or imagePolicy.resolveTags: true"
            )
            return [ctx.problem(name, ("spec", "image"), message)]
    return []


def _own_objects(ctx: Context, name: str) -> bool:
    return f"services/{name}/manifests" in ctx.trees


def _no_run(ctx: Context, name: str, cells: list[str]) -> str:
    spec = ctx.service(name).spec
    if spec.image is None and spec.run is None and (_own_objects(ctx, name) or spec.chart):
        source = "its chart" if spec.chart is not None else f"services/{name}/manifests/"
        return (
            f"runs in local cells ({_few(sorted(cells))}) but has neither image nor run: its"
            f" workloads come from {source}, which only Kubernetes cells apply; select only"
            " Kubernetes cells in spec.cells, or give it run.command and an app/ folder"
        )
    return (
        f"runs in local cells ({_few(sorted(cells))}) but has no run: expected"
        " run.command to start it from its app/ folder"
    )


def check_service_ports(ctx: Context) -> list[Problem]:
    """A local cell is one address: its services' ports must differ, as on one host."""
    users: dict[int, dict[str, set[str]]] = {}  # port -> service -> local cells using it
    for name, variants in ctx.variants.items():
        for variant in variants:
            cells = variant.cells & ctx.local_cells
            for port in variant.spec.ports if cells else ():
                users.setdefault(port.port, {}).setdefault(name, set()).update(cells)
    problems = []
    for (name, number, other), clashing in sorted(_port_clashes(users)):
        problems.append(
            ctx.problem(
                name,
                _port_field(ctx.service(name).spec, number),
                (
                    f"port {number} is also used by {other} in local cells {_few(clashing)}:"
                    " services of a local cell share its address and need different ports"
                ),
            )
        )
    return problems


def _port_field(spec: ServiceSpec, number: int) -> tuple[PathItem, ...]:
    """Where the service declares port `number`: its ports, or the last override whose
    patch brings it in."""
    for i, port in enumerate(spec.ports):
        if port.port == number:
            return ("spec", "ports", i, "port")
    for i, override in reversed(list(enumerate(spec.overrides))):
        ports = override.patch.get("ports")
        for j, port in enumerate(ports if isinstance(ports, list) else []):
            if isinstance(port, dict) and port.get("port") == number:
                return ("spec", "overrides", i, "patch", "ports", j, "port")
    return ("spec", "ports")


def _port_clashes(
    users: Mapping[int, Mapping[str, set[str]]],
) -> list[tuple[tuple[str, int, str], list[str]]]:
    """((service, port, owner), cells) for each service that claims a port in cells where
    an earlier service (the port's owner there) already holds it."""
    clashes = []
    for number, by_service in users.items():
        owners: list[tuple[str, set[str]]] = []
        for name, cells in by_service.items():
            remaining = cells
            for owner, owned in owners:
                taken = remaining & owned
                if taken:
                    clashes.append(((name, number, owner), sorted(taken)))
                    remaining = remaining - taken
            owners.append((name, cells))
    return clashes


def check_dependencies(ctx: Context) -> list[Problem]:
    problems = []
    for name in ctx.services:
        for i, dep in enumerate(ctx.service(name).spec.depends_on):
            where = ("spec", "dependsOn", i)
            if dep == name:
                problems.append(ctx.problem(name, where, "a service cannot depend on itself"))
            elif dep not in ctx.services:
                problems.append(ctx.problem(name, where, f"unknown service {dep!r}"))
            else:
                absent = sorted(ctx.cells_of[name] - ctx.cells_of[dep])
                if absent:
                    problems.append(
                        ctx.problem(
                            name,
                            where,
                            (f"depends on {dep!r}, which does not run in cells {_few(absent)}"),
                        )
                    )
    cycle = _find_cycle({n: ctx.service(n).spec.depends_on for n in ctx.services})
    if cycle:
        first = cycle[0]
        problems.append(
            ctx.problem(
                first, ("spec", "dependsOn"), ("dependency cycle: " + " -> ".join([*cycle, first]))
            )
        )
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, []):
            if dep == node or dep not in graph:
                continue
            if state.get(dep) == 1:
                return path[path.index(dep) :]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def check_contracts(ctx: Context) -> list[Problem]:
    providers: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
    for name in ctx.placement:
        for contract in ctx.service(name).spec.contracts.provides:
            providers[contract].append((name, ctx.cells_of[name]))
    problems = []
    for name in ctx.placement:
        cells = ctx.cells_of[name]
        contracts = ctx.service(name).spec.contracts
        for i, contract in enumerate(contracts.provides):
            others = [(other, held & cells) for other, held in providers[contract] if other != name]
            shared = frozenset[str]().union(*(held for _, held in others))
            if shared:
                first = min(shared)
                problems.append(
                    ctx.problem(
                        name,
                        ("spec", "contracts", "provides", i),
                        (
                            f"{contract} is also provided by"
                            f" {', '.join(sorted(o for o, held in others if first in held))}"
                            f" in cells {_few(sorted(shared))}: expected one provider per cell"
                        ),
                    )
                )
        for i, contract in enumerate(contracts.consumes):
            lacking = cells.difference(*(held for _, held in providers.get(contract, ())))
            if lacking:
                problems.append(
                    ctx.problem(
                        name,
                        ("spec", "contracts", "consumes", i),
                        _no_provider(ctx, name, contract, sorted(lacking)),
                    )
                )
    return problems


def _no_provider(ctx: Context, consumer: str, contract: str, cells: list[str]) -> str:
    removed = sorted(
        {
            ctx.previous_providers[c][contract]
            for c in cells
            if contract in ctx.previous_providers.get(c, {})
        }
    )
    if removed:
        return (
            f"{contract} is removed from cells {_few(cells)} (it was provided by"
            f" {', '.join(removed)}) but {consumer} still consumes it"
        )
    return f"{contract} has no provider in cells {_few(cells)}, where {consumer} runs"


def check_addresses(ctx: Context) -> list[Problem]:
    """A cell's boundary is its own: no two local cells on one address, no two Kubernetes
    cells in one namespace of one cluster (they would overwrite and prune each other)."""
    fleet = ctx.fleet.model
    assert fleet is not None
    seen: dict[str, str] = {}
    problems = []
    for name, parsed in sorted(ctx.cells.items()):
        claim = _boundary(fleet.metadata.name, name, parsed.model.spec) if parsed.model else None
        if claim is None:
            continue
        place, field, what = claim
        if place in seen:
            where = ("spec", "backend", field)
            problems.append(
                Problem(
                    parsed.path,
                    parsed.line(*where),
                    field_path(where),
                    f"{what} is already used by cell {seen[place]}"
                    f" (set a different spec.backend.{field})",
                )
            )
        seen.setdefault(place, name)
    return problems


def _boundary(fleet: str, name: str, spec: CellSpec) -> tuple[str, str, str] | None:
    """(what only one cell may hold, the field that sets it, its wording)."""
    backend = spec.backend
    if isinstance(backend, KubernetesBackend):
        namespace = backend.namespace or f"cell-{name}"
        cluster = f"{backend.kubeconfig or ''}|{backend.context or ''}"
        return f"namespace|{cluster}|{namespace}", "namespace", f"namespace {namespace}"
    address = local_address(fleet, name, spec)
    return None if address is None else (f"address|{address}", "address", f"address {address}")


def check_waves(ctx: Context) -> list[Problem]:
    fleet = ctx.fleet.model
    assert fleet is not None
    problems = []
    for i, wave in enumerate(fleet.spec.rollout.waves):
        if wave.selector is not None and not ctx.index.match_labels(wave.selector):
            where = ("spec", "rollout", "waves", i, "selector")
            problems.append(
                warning(
                    ctx.fleet.path,
                    ctx.fleet.line(*where),
                    field_path(where),
                    f"wave {wave.name!r} selects no cell",
                )
            )
    return problems


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
