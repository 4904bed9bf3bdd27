"""Every object a revision would apply to its Kubernetes cells, checked offline against
the API schema of the fleet's Kubernetes version (kubernetes-validate, strict: unknown
fields are errors). Run before a revision is accepted; an invalid object rejects it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate

from cellops.backends.kubernetes.manifests import ManifestError
from cellops.model.problems import Problem
from cellops.render import DesiredFleet
from cellops.render.kubernetes import (
    FROM_MANIFESTS,
    SERVICE,
    ManifestObjectError,
    cell_objects,
    namespace_of,
)
from cellops.spec.cell import KubernetesBackend
from cellops.spec.revision import Revision

Manifests = Callable[[str, str], list[dict[str, Any]]]  # (service, tree id) -> objects


def check_kubernetes(
    revision: Revision, desired: DesiredFleet, manifests: Manifests
) -> list[Problem]:
    version = revision.fleet.spec.kubernetes.version
    problems: dict[tuple[str, str], Problem] = {}
    checked: set[str] = set()
    for cell in desired.cells.values():
        if not isinstance(cell.spec.backend, KubernetesBackend):
            continue
        try:
            own = {
                name: manifests(name, tree)
                for name in cell.services
                if (tree := revision.manifests_tree(name)) is not None
            }
            objects = cell_objects(cell, revision.id, own)
        except (ManifestError, ManifestObjectError) as exc:
            problems.setdefault(("", str(exc)), Problem(_file_of(str(exc)), None, "", str(exc)))
            continue
        namespace = namespace_of(cell)
        for obj in objects:
            key = _identity(obj, cell.name, namespace)
            if key in checked:
                continue  # cells share most objects but for their name and namespace
            checked.add(key)
            problem = _validate(obj, version, cell.name)
            if problem is not None:
                problems.setdefault((problem.file, problem.message), problem)
    return list(problems.values())


def _validate(obj: dict[str, Any], version: str, cell: str) -> Problem | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        service = obj["metadata"].get("labels", {}).get(SERVICE)
        own = FROM_MANIFESTS in (obj["metadata"].get("annotations") or {})
        file = (
            f"services/{service}/{'manifests' if own else 'service.yaml'}"
            if service
            else f"cells/{cell}.yaml"
        )
        where = ".".join(str(p) for p in exc.path) if hasattr(exc, "path") else ""
        field = f"{obj['kind']} {obj['metadata']['name']}" + (f": {where}" if where else "")
        message = f"not valid for Kubernetes {version}: {exc.message}"
        return Problem(file, None, field, message)
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return Problem(f"cells/{cell}.yaml", None, f"{obj['kind']}", f"cannot validate: {exc}")
    return None


def _identity(obj: dict[str, Any], cell: str, namespace: str) -> str:
    """The object's shape with its cell's name and namespace blanked out: cells' objects
    differ in little else (names, labels, selectors), and both are DNS labels wherever
    they appear, so objects of one shape are valid or invalid together and each shape is
    validated once, however many cells share it."""

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        if value == cell:
            return "<cell>"
        return "<namespace>" if value == namespace else value

    return json.dumps(shape(obj), sort_keys=True)


def _file_of(message: str) -> str:
    return message.split(":", 1)[0] if message.startswith("services/") else "services/"


def kubernetes_check(manifests: Manifests) -> Callable[[Revision, DesiredFleet], list[Problem]]:
    """The check as the compiler runs it, building manifests with `manifests`."""

    def check(revision: Revision, desired: DesiredFleet) -> list[Problem]:
        return check_kubernetes(revision, desired, manifests)

    return check
