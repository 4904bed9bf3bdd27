"""Every object a revision would apply to its Kubernetes cells, checked offline against
the API schema of the fleet's Kubernetes version (kubernetes-validate, strict: unknown
fields are errors). Run before a revision is accepted; an invalid object rejects it."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils
from referencing import Registry, Resource

from cellops.backends.kubernetes.containment import (
    CellRules,
    FleetRules,
    clash_message,
    object_problems,
    scope_problem,
    unreachable_ingress,
)
from cellops.backends.kubernetes.helm import FROM_CHART
from cellops.backends.kubernetes.manifests import ManifestError, Manifests, own_objects
from cellops.diff.live import ObjectKey, key_of
from cellops.model.problems import Problem, Severity
from cellops.render import DesiredCell, DesiredFleet
from cellops.render.hashing import canonical_json
from cellops.render.k8s_policy import default_limits, pod_security_of
from cellops.render.kubernetes import (
    FROM_MANIFESTS,
    SERVICE,
    ManifestObjectError,
    cell_objects,
    namespace_of,
)
from cellops.spec.cell import KubernetesBackend
from cellops.spec.revision import Revision


def check_kubernetes(
    revision: Revision, desired: DesiredFleet, manifests: Manifests
) -> list[Problem]:
    """Every problem of every object of every Kubernetes cell. A problem is reported once
    per object: the same problem of one object in many cells is one, the same problem of
    two objects is two."""
    version = revision.fleet.spec.kubernetes.version
    fleet = FleetRules.of(revision.fleet.spec)
    problems: dict[tuple[str, str, str], Problem] = {}
    built = _OwnObjects(manifests)
    checked: set[tuple[object, ...]] = set()
    for cell in desired.cells.values():
        if not isinstance(cell.spec.backend, KubernetesBackend):
            continue
        own, failed = built.of(cell)
        found = list(failed)
        try:
            objects = cell_objects(cell, revision.id, own)
        except ManifestObjectError as exc:
            found.append(_problem_of(exc))
        else:
            found += _cell_problems(objects, cell, version, fleet, checked)
        for problem in found:
            problems.setdefault((problem.file, problem.field, problem.message), problem)
    return list(problems.values())


def _cell_problems(
    objects: list[dict[str, Any]],
    cell: DesiredCell,
    version: str,
    fleet: FleetRules,
    checked: set[tuple[object, ...]],
) -> Iterator[Problem]:
    yield from _duplicates(objects, cell.name)
    namespace = namespace_of(cell)
    limits = tuple(sorted(default_limits(cell).items()))
    rules = CellRules(namespace, pod_security_of(cell), limits)
    ingress = getattr(cell.spec.backend, "ingress_namespace", None)
    for obj in objects:
        file = _file_of_object(obj, cell.name)
        unreachable = unreachable_ingress(obj, ingress)
        if unreachable is not None:
            field = f"{obj['kind']} {obj['metadata']['name']}"
            yield Problem(file, None, field, unreachable, Severity.WARNING)
        key = (rules.pod_security, limits, _identity(obj, cell.name, namespace))
        if key in checked:
            continue  # cells share most objects but for their name and namespace
        checked.add(key)
        own = _is_own(obj)
        scope = scope_problem(obj, fleet) if own or obj["kind"] != "Namespace" else None
        if scope is not None:  # not applied anywhere: nothing else about it matters
            yield Problem(file, None, f"{obj['kind']} {obj['metadata']['name']}", scope)
            continue
        yield from object_problems(obj, file, own, fleet, rules)
        problem = _validate(obj, version, cell.name)
        if problem is not None:
            yield problem


class _OwnObjects:
    """Services' own objects, built once per service and version: a build that fails is
    one problem, not one per cell (kubectl's messages differ between two runs)."""

    def __init__(self, manifests: Manifests) -> None:
        self._manifests = manifests
        self._done: dict[str, list[dict[str, Any]] | Problem] = {}

    def of(self, cell: DesiredCell) -> tuple[dict[str, list[dict[str, Any]]], list[Problem]]:
        own: dict[str, list[dict[str, Any]]] = {}
        failed: list[Problem] = []
        for name, service in cell.services.items():
            chart = service.spec.chart
            key = canonical_json(
                [name, service.code, chart and chart.model_dump(mode="json"), namespace_of(cell)]
                if chart is not None
                else [name, service.code]
            )
            if key not in self._done:
                try:
                    built = own_objects(self._manifests, cell, {name: service})
                    self._done[key] = built.get(name, [])
                except ManifestError as exc:
                    self._done[key] = _problem_of(exc)
            done = self._done[key]
            if isinstance(done, Problem):
                failed.append(done)
            elif done:
                own[name] = done
        return own, failed


def _problem_of(exc: Exception) -> Problem:
    known = getattr(exc, "problem", None)  # a YAML problem knows its file and line
    if isinstance(known, Problem):
        return known
    file = _file_of(str(exc))
    return Problem(file, None, "", str(exc).removeprefix(f"{file}: "))


@functools.lru_cache(maxsize=256)
def _validator(version: str, kind: str, api_version: str) -> Any:
    """kubernetes-validate's strict schema for one kind, loaded once: its own `validate`
    reads and parses the schema and all definitions (megabytes of JSON) on every call."""
    wanted = utils.major_minor(version)
    if wanted > utils.latest_version():
        raise utils.VersionNotSupportedError(version=wanted)
    schema_version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 -> apps-v1
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(
            version=wanted, kind=kind, api_version=api_version
        ) from None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _validate(obj: dict[str, Any], version: str, cell: str) -> Problem | None:
    field = f"{obj['kind']} {obj['metadata']['name']}"
    try:
        _validator(version, str(obj["kind"]), str(obj["apiVersion"])).validate(obj)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        message = f"not valid for Kubernetes {version}: {exc.message}"
        return Problem(_file_of_object(obj, cell), None, f"{field}: {where}".rstrip(": "), message)
    except kubernetes_validate.SchemaNotFoundError:
        # a custom resource: its schema lives in its CRD, in the cluster, not here
        return Problem(
            _file_of_object(obj, cell),
            None,
            field,
            f"no schema for {obj['kind']} ({obj['apiVersion']}) in Kubernetes {version}:"
            " not validated before it is applied",
            Severity.WARNING,
        )
    except utils.VersionNotSupportedError:
        return Problem(
            "cellops.yaml",
            None,
            "spec.kubernetes.version",
            f"kubernetes-validate has no schemas for Kubernetes {version}: expected"
            f" {utils.major_minor(utils.latest_version())} or older",
        )
    except kubernetes_validate.InvalidSchemaError as exc:
        return Problem(_file_of_object(obj, cell), None, field, f"cannot validate: {exc.message}")
    return None


def _duplicates(objects: list[dict[str, Any]], cell: str) -> list[Problem]:
    """Two objects with one identity would overwrite each other on every apply."""
    first: dict[ObjectKey, dict[str, Any]] = {}
    found = []
    for obj in objects:
        key = key_of(obj)
        if key in first:
            earlier, file = first[key], _file_of_object(obj, cell)
            own = file if _is_own(obj) and not _is_own(earlier) else None
            service = obj["metadata"].get("labels", {}).get(SERVICE)
            message = clash_message(str(obj["kind"]), service, _file_of_object(earlier, cell), own)
            found.append(Problem(file, None, f"{obj['kind']} {obj['metadata']['name']}", message))
        first.setdefault(key, obj)
    return found


def _is_own(obj: dict[str, Any]) -> bool:
    """From a service's own files (manifests/, chart), not rendered by cellops."""
    annotations = obj["metadata"].get("annotations") or {}
    return FROM_MANIFESTS in annotations or FROM_CHART in annotations


def _file_of_object(obj: dict[str, Any], cell: str) -> str:
    """Where an object comes from: its service's file or manifests, or the cell."""
    service = obj["metadata"].get("labels", {}).get(SERVICE)
    if service is None:
        return f"cells/{cell}.yaml"
    annotations = obj["metadata"].get("annotations") or {}
    if FROM_CHART in annotations:  # services/<name>/chart/templates/...
        return str(annotations[FROM_CHART])
    own = FROM_MANIFESTS in annotations
    return f"services/{service}/{'manifests' if own else 'service.yaml'}"


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
