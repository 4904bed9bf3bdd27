"""A snapshot of fleet files -> a validated `Revision`, or `RevisionRejected` with every error.

Document-level errors (YAML, fields, types, names) are gathered for every file first; the
cross-document rules run only when every document parsed, so one broken cell file does not
cascade into "selects no cell" errors elsewhere.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.model.snapshot import Snapshot
from cellops.spec.cell import CellDocument
from cellops.spec.checks import Context, run_checks
from cellops.spec.documents import ParseCache, Parsed, parse_document
from cellops.spec.fleet import FleetDocument
from cellops.spec.placement import place_services
from cellops.spec.revision import Revision
from cellops.spec.selection import CellIndex
from cellops.spec.service import ServiceDocument
from cellops.spec.tenants import TenantsDocument
from cellops.tenancy.fleet import check_tenants

M = TypeVar("M", CellDocument, ServiceDocument, TenantsDocument)
FLEET_FILE = "cellops.yaml"
_CELL_FILE = re.compile(r"^cells/([^/]+)\.yaml\Z")
_SERVICE_FILE = re.compile(r"^services/([^/]+)/service\.yaml\Z")
_TENANTS_FILE = re.compile(r"^tenants/([^/]+)\.yaml\Z")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def load_revision(
    snapshot: Snapshot,
    previous: Revision | None = None,
    cache: ParseCache | None = None,
) -> Revision:
    """Validate a snapshot. `previous` (the revision now running) sharpens contract errors."""
    problems: list[Problem] = list(snapshot.problems)
    fleet = _load_fleet(snapshot, cache, problems)
    cells = _load_named(snapshot, _CELL_FILE, CellDocument, cache, problems)
    services = _load_named(snapshot, _SERVICE_FILE, ServiceDocument, cache, problems)
    tenants = _load_named(snapshot, _TENANTS_FILE, TenantsDocument, cache, problems)
    problems += _missing_service_files(snapshot, services)
    if fleet is None or _has_errors(problems):
        raise RevisionRejected(snapshot.revision, tuple(problems))

    index = CellIndex({n: p.model for n, p in cells.items() if p.model is not None})
    placement, variants, placement_problems = place_services(fleet.model, services, index)  # type: ignore[arg-type]
    problems += placement_problems
    ctx = Context(
        fleet, cells, services, placement, variants, snapshot.trees, index, _providers(previous)
    )
    problems += run_checks(ctx)
    cell_models = {n: p.model for n, p in cells.items() if p.model is not None}
    tenant_files = {p.path: p for p in tenants.values()}
    problems += check_tenants(fleet.model, cell_models, tenant_files)[1]  # type: ignore[arg-type]
    if _has_errors(problems):
        raise RevisionRejected(snapshot.revision, tuple(sorted(problems, key=_order)))
    return Revision(
        id=snapshot.revision,
        fleet=fleet.model,  # type: ignore[arg-type]
        cells={n: p.model for n, p in sorted(cells.items()) if p.model is not None},
        services={n: p.model for n, p in sorted(services.items()) if p.model is not None},
        placement=placement,
        variants=variants,
        trees=dict(snapshot.trees),
        warnings=tuple(sorted(problems, key=_order)),
        message=snapshot.message,
        committed_at=snapshot.committed_at,
        tenants={p.path: p.model for _, p in sorted(tenants.items()) if p.model is not None},
    )


def _order(problem: Problem) -> tuple[str, int, str]:
    return (problem.file, problem.line or 0, problem.message)


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)


def _load_fleet(
    snapshot: Snapshot, cache: ParseCache | None, problems: list[Problem]
) -> Parsed[FleetDocument] | None:
    blob = snapshot.files.get(FLEET_FILE)
    if blob is None:
        problems.append(
            Problem(
                FLEET_FILE,
                None,
                "",
                "missing: a fleet repo needs cellops.yaml (kind: Fleet) at its root",
            )
        )
        return None
    parsed = parse_document(FLEET_FILE, blob, FleetDocument, cache)
    problems.extend(parsed.problems)
    return parsed if parsed.model is not None else None


def _load_named(
    snapshot: Snapshot,
    pattern: re.Pattern[str],
    model: type[M],
    cache: ParseCache | None,
    problems: list[Problem],
) -> dict[str, Parsed[M]]:
    """Parse the documents whose path matches `pattern`; the name comes from the path."""
    folder = _FOLDERS[model.__name__]
    loaded: dict[str, Parsed[M]] = {}
    for path, blob in sorted(snapshot.files.items()):
        if not path.startswith(folder):
            continue
        match = pattern.match(path)
        if match is None:
            problems.append(Problem(path, None, "", _misplaced(folder)))
            continue
        name = match.group(1)
        parsed = parse_document(path, blob, model, cache)
        problems.extend(parsed.problems)
        if not _DNS_LABEL.match(name):
            problems.append(
                Problem(
                    path,
                    None,
                    "",
                    (
                        f"{name!r} is not a DNS-1123 label: file and folder names are cell and"
                        " service names (lower-case letters, digits, '-')"
                    ),
                )
            )
        elif parsed.model is not None and parsed.model.metadata.name != name:
            problems.append(
                Problem(
                    path,
                    parsed.line("metadata", "name"),
                    "metadata.name",
                    (
                        f"{parsed.model.metadata.name!r} does not match the file name:"
                        f" expected {name!r}"
                    ),
                )
            )
        loaded[name] = parsed
    return loaded


_FOLDERS = {"CellDocument": "cells/", "ServiceDocument": "services/", "TenantsDocument": "tenants/"}


def _misplaced(folder: str) -> str:
    if folder == "cells/":
        return "not a cell file: expected cells/<name>.yaml"
    if folder == "tenants/":
        return "not a tenants file: expected tenants/<name>.yaml (kind: Tenants)"
    return "not a service file: expected services/<name>/service.yaml"


def _missing_service_files(
    snapshot: Snapshot, services: Mapping[str, Parsed[ServiceDocument]]
) -> list[Problem]:
    problems = []
    for path in sorted(snapshot.trees):
        parts = path.split("/")
        if len(parts) == 2 and parts[0] == "services" and parts[1] not in services:
            problems.append(
                Problem(
                    path + "/",
                    None,
                    "",
                    (
                        "service folder without service.yaml: expected"
                        f" {path}/service.yaml (kind: Service)"
                    ),
                )
            )
    return problems


def _providers(previous: Revision | None) -> dict[str, dict[str, str]]:
    if previous is None:
        return {}
    providers: dict[str, dict[str, str]] = {}
    for name, cells in previous.placement.items():
        for contract in previous.services[name].spec.contracts.provides:
            for cell in cells:
                providers.setdefault(cell, {})[contract] = name
    return providers
