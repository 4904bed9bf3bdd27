"""What keeps a cell's objects inside its namespace, checked on every object a revision
would apply to a Kubernetes cell (cellops' own, a service's `manifests/`, its chart):

- scope: only kinds known to be namespaced (spec/k8s_scope.py, or declared by the fleet);
- RBAC: a RoleBinding grants within the cell, to the cell's accounts (render/k8s_rbac.py);
- pods: every pod template meets the cell's Pod Security level (render/k8s_podsecurity.py);
- images: every container, init and ephemeral container of a service's own objects
  follows the fleet's image policy (cellops' own Deployments are checked at their line in
  service.yaml);
- resources: a container that requests more than the cell's default limit without setting
  its own limit would be refused by the LimitRange (request above limit).

Each problem names the file, the object (kind and name) and the field. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any

from cellops.model.problems import Problem
from cellops.render.k8s_podsecurity import containers, pod_template, violations
from cellops.render.k8s_rbac import rbac_violations
from cellops.spec.fields import quantity_value
from cellops.spec.fleet import FleetSpec
from cellops.spec.image_checks import image_problems
from cellops.spec.image_policy import ImagePolicy
from cellops.spec.k8s_scope import CLUSTER_SCOPED, NAMESPACED, group_of

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class FleetRules:
    """What the fleet allows in every cell."""

    namespaced: frozenset[tuple[str, str]]  # built-in namespaced kinds and declared ones
    cluster_roles: tuple[str, ...]
    images: ImagePolicy

    @classmethod
    def of(cls, fleet: FleetSpec) -> FleetRules:
        settings = fleet.kubernetes
        declared = {(k.group, k.kind) for k in settings.namespaced_kinds}
        return cls(NAMESPACED | declared, tuple(settings.allowed_cluster_roles), fleet.image_policy)


@dataclass(frozen=True)
class CellRules:
    """What differs between cells: the namespace, Pod Security level and default limits."""

    namespace: str
    pod_security: str
    default_limits: tuple[tuple[str, str], ...]


def scope_problem(obj: Obj, rules: FleetRules) -> str | None:
    """Why `obj` cannot be in a cell's namespace, or None if its kind is namespaced."""
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    group = group_of(api_version)
    if (group, kind) in rules.namespaced:
        return None
    if (group, kind) in CLUSTER_SCOPED:
        return (
            f"{kind} {obj['metadata'].get('name')!r} is cluster-scoped: a cell holds only"
            " namespaced objects (its namespace is all it owns; cells may share a cluster)"
        )
    declare = f"{{group: {group}, kind: {kind}}}" if group else ""
    return (
        f"{kind} ({api_version}) is not a kind cellops knows to be namespaced, and a cell"
        " holds only namespaced objects"
        + (
            f": if it is a namespaced custom resource, declare it in cellops.yaml under"
            f" spec.kubernetes.namespacedKinds: [{declare}]"
            if declare
            else ""
        )
    )


def object_problems(
    obj: Obj, file: str, own: bool, fleet: FleetRules, cell: CellRules
) -> list[Problem]:
    """Every way `obj` (from `file`; `own`: a service's manifests or chart), of a kind
    known to be namespaced (`scope_problem`), leaves the cell, each as a problem naming
    the object and the field."""
    name = f"{obj['kind']} {obj['metadata']['name']}"
    found = rbac_violations(obj, cell.namespace, fleet.cluster_roles)
    found += violations(obj, cell.pod_security)
    if own:
        found += _images(obj, fleet.images)
        found += _requests_above_default_limit(obj, dict(cell.default_limits))
    return [Problem(file, None, f"{name}: {field}", message) for field, message in found]


def _images(obj: Obj, policy: ImagePolicy) -> Iterator[tuple[str, str]]:
    for path, container in _containers(obj):
        image = container.get("image")
        if isinstance(image, str):  # anything else: the schema says what is wrong
            for message in image_problems(image, policy):
                yield f"{path}.image", message


def _requests_above_default_limit(
    obj: Obj, default: Mapping[str, str]
) -> Iterator[tuple[str, str]]:
    if not default:
        return
    for path, container in _containers(obj):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for resource, limit in default.items():
            request = requests.get(resource)
            if request is None or resource in limits or not _above(str(request), limit):
                continue
            yield (
                f"{path}.resources.limits.{resource}",
                (
                    f"expected a limit: requests.{resource} {request} is above {limit}, the limit"
                    f" the cell's LimitRange gives a container that sets no limits.{resource}"
                    " (Kubernetes would refuse the pod)"
                ),
            )


def _containers(obj: Obj) -> Iterator[tuple[str, Obj]]:
    template = pod_template(obj)
    if template is not None:
        yield from containers(template[1], template[0])


def _above(value: str, limit: str) -> bool:
    try:
        return quantity_value(value) > quantity_value(limit)
    except (ValueError, InvalidOperation):
        return False  # not a quantity: the schema check reports it


# How to stop cellops rendering an object of a service's own, by kind (a name clash)
_OPT_OUT = {
    "Deployment": "drop spec.image from {file} to make {service} a manifests-only service"
    " (its workloads then come from its own files only)",
    "Service": "remove spec.ports from {file} (cellops then renders no Service for it),"
    " or drop spec.image to make {service} a manifests-only service",
    "PodDisruptionBudget": "set spec.replicas to 1 in {file} (cellops then renders no"
    " PodDisruptionBudget for it), or drop spec.image to make {service} manifests-only",
}
_OPT_OUT["ServiceAccount"] = _OPT_OUT["Deployment"]


def clash_message(kind: str, service: str | None, rendered: str, own: str | None) -> str:
    """Two objects with one identity: `rendered` is the file of the first; `own` the file
    of the second when it is a service's own and the first is cellops' (from service.yaml)."""
    if own is None or service is None or kind not in _OPT_OUT:
        return f"the same object is already rendered from {rendered}: rename one of them"
    return (
        f"the same object is already rendered from {rendered}: rename it in {own}, or "
        + _OPT_OUT[kind].format(file=rendered, service=service)
    )


def unreachable_ingress(obj: Obj, ingress_namespace: str | None) -> str | None:
    """Why an Ingress kept in a cell can never be reached, or None."""
    if obj.get("kind") != "Ingress" or ingress_namespace is not None:
        return None
    return (
        "no ingress controller may reach the cell's pods, so this Ingress serves nothing:"
        " set spec.kubernetes.ingressNamespace in cellops.yaml (or the cell's"
        " spec.backend.ingressNamespace) to the namespace of the ingress controller"
    )
