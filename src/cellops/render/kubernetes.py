"""The Kubernetes objects of one cell: its namespace and the policies that make it a
boundary (k8s_policy.py), per service a ServiceAccount, Deployment, Service and
PodDisruptionBudget, and each service's own objects adopted into the namespace.

Every object carries `app.kubernetes.io/managed-by: cellops` and the cell, service and
revision labels. Containers run non-root, without privilege escalation, on a read-only
root filesystem, with every capability dropped. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellops.render.desired import DesiredCell, DesiredService
from cellops.render.k8s_policy import boundary_objects, k8s_object
from cellops.render.k8s_rbac import move_subjects
from cellops.render.own import HASH, stamp
from cellops.spec.cell import KubernetesBackend
from cellops.spec.service import Probe, ServiceSpec

MANAGED_BY = "app.kubernetes.io/managed-by"
CELL, SERVICE, REVISION = "cellops.dev/cell", "cellops.dev/service", "cellops.dev/revision"
IRSA = "eks.amazonaws.com/role-arn"
FROM_MANIFESTS = "cellops.dev/from-manifests"  # marks objects from a service's manifests/
# On a Deployment: the service version it carries. Not on its pod template: a change that
# leaves the pods alone (quota, an account's IAM role) must not restart them.
# (render/own.py: also on a manifests-only service's own workloads)
Obj = dict[str, Any]


def namespace_of(cell: DesiredCell) -> str:
    backend = cell.spec.backend
    assert isinstance(backend, KubernetesBackend), f"{cell.name} is not a Kubernetes cell"
    return backend.namespace or f"cell-{cell.name}"


class ManifestObjectError(ValueError):
    """An object of a service's manifests cannot live in a cell."""


def adopt(objects: list[Obj], namespace: str, labels: Mapping[str, str]) -> list[Obj]:
    """A service's own manifests as the cell runs them: in the cell's namespace, labelled
    as cellops' own, a RoleBinding's accounts of the namespace it was written for moved
    with it (k8s_rbac.py). Whether the cell may hold them is validation's to say
    (backends/kubernetes/containment.py). Copies; the input is left alone."""
    adopted = []
    for obj in objects:
        source = obj["metadata"].get("namespace")  # the namespace it was written for
        copy = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        copy["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), **labels}
        annotations = obj["metadata"].get("annotations") or {}
        copy["metadata"]["annotations"] = {**annotations, FROM_MANIFESTS: "true"}
        adopted.append(move_subjects(copy, source, namespace))
    return adopted


def cell_objects(
    cell: DesiredCell, revision: str, manifests: Mapping[str, list[Obj]] | None = None
) -> list[Obj]:
    """Everything the cell needs, in apply order: the namespace and its policies first.

    `manifests`: each service's own objects, built from its `manifests/` folder.
    """
    namespace = namespace_of(cell)
    labels = _labels(cell.name, None, revision)
    objects = boundary_objects(cell, namespace, labels)
    for name in sorted(cell.services):
        service = cell.services[name]
        own = (manifests or {}).get(name, [])
        if service.spec.image is None:  # manifests-only: its own workloads carry its version
            own = stamp(own, service.hash)
        rendered = service_objects(cell, service, namespace)
        if _autoscaled(own, name):  # its autoscaler owns replicas: cellops does not set them
            for obj in rendered:
                if obj["kind"] == "Deployment":
                    del obj["spec"]["replicas"]
        objects += rendered
        try:
            objects += adopt(own, namespace, _labels(cell.name, name, service.revision))
        except ManifestObjectError as exc:
            raise ManifestObjectError(f"services/{name}/manifests: {exc}") from None
    return objects


def service_objects(cell: DesiredCell, service: DesiredService, namespace: str) -> list[Obj]:
    """cellops' own objects for a service with an image; none for a manifests-only one."""
    spec = service.spec
    if spec.image is None:
        return []
    labels = _labels(cell.name, service.name, service.revision)
    account = k8s_object("v1", "ServiceAccount", service.name, namespace, labels)
    backend = cell.spec.backend
    if isinstance(backend, KubernetesBackend) and backend.iam_role_arn:
        account["metadata"]["annotations"] = {IRSA: backend.iam_role_arn}
    account["automountServiceAccountToken"] = False
    deployment = _deployment(cell.name, service, namespace, labels)
    if isinstance(backend, KubernetesBackend) and backend.iam_role_arn:
        # EKS injects the role into pods when they start: a new role needs new pods
        template = deployment["spec"]["template"]["metadata"]
        template["annotations"] = {"cellops.dev/iam-role": backend.iam_role_arn}
    objects = [account, deployment]
    if spec.ports:
        svc = k8s_object("v1", "Service", service.name, namespace, labels)
        svc["spec"] = {
            "selector": _selector(cell.name, service.name),
            "ports": [
                {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol}
                for p in spec.ports
            ],
        }
        objects.append(svc)
    if (spec.replicas or 0) > 1:
        budget = k8s_object("policy/v1", "PodDisruptionBudget", service.name, namespace, labels)
        budget["spec"] = {
            "maxUnavailable": max(1, spec.strategy.max_unavailable),
            "selector": {"matchLabels": _selector(cell.name, service.name)},
        }
        objects.append(budget)
    return objects


def _deployment(
    cell: str, service: DesiredService, namespace: str, labels: Mapping[str, str]
) -> Obj:
    spec = service.spec
    assert spec.image is not None, f"{service.name} has no image"
    selector = _selector(cell, service.name)
    container: Obj = {
        "name": service.name,
        "image": spec.image,
        "env": [{"name": k, "value": v} for k, v in sorted(spec.env.items())],
        "ports": [
            {"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in spec.ports
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    container.update(_probes(spec))
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(mode="json", exclude_none=True)
    deployment = k8s_object("apps/v1", "Deployment", service.name, namespace, labels)
    deployment["metadata"]["annotations"] = {HASH: service.hash}
    deployment["spec"] = {
        "replicas": spec.replicas or 0,
        "selector": {"matchLabels": selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": spec.strategy.max_surge,
                "maxUnavailable": spec.strategy.max_unavailable,
            },
        },
        "template": {
            # no revision label or hash here: an unchanged pod must not restart
            "metadata": {"labels": {**selector, MANAGED_BY: "cellops"}},
            "spec": {
                "serviceAccountName": service.name,
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
            },
        },
    }
    return deployment


def _probes(spec: ServiceSpec) -> Obj:
    out: Obj = {}
    for kind in ("startup", "readiness", "liveness"):
        probe: Probe | None = getattr(spec.probes, kind)
        if probe is not None:
            out[f"{kind}Probe"] = _probe(probe)
    return out


def _probe(probe: Probe) -> Obj:
    handler: Obj
    if probe.http is not None:
        handler = {
            "httpGet": {
                "path": probe.http.path,
                "port": probe.http.port,
                "scheme": probe.http.scheme,
            }
        }
        if probe.http.headers:
            handler["httpGet"]["httpHeaders"] = [
                {"name": k, "value": v} for k, v in sorted(probe.http.headers.items())
            ]
    elif probe.tcp is not None:
        handler = {"tcpSocket": {"port": probe.tcp.port}}
    else:
        assert probe.exec is not None
        handler = {"exec": {"command": probe.exec.command}}
    return {
        **handler,
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


def _autoscaled(objects: list[Obj], service: str) -> bool:
    """A HorizontalPodAutoscaler among a service's manifests scales its Deployment."""
    return any(
        obj.get("kind") == "HorizontalPodAutoscaler"
        and (obj.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == "Deployment"
        and (obj.get("spec") or {}).get("scaleTargetRef", {}).get("name") == service
        for obj in objects
    )


def _labels(cell: str, service: str | None, revision: str) -> dict[str, str]:
    # a label value: the commit id's first 12 hex digits ("worktree:<id>" loses its prefix)
    labels = {MANAGED_BY: "cellops", CELL: cell, REVISION: revision.rsplit(":", 1)[-1][:12]}
    if service is not None:
        labels[SERVICE] = service
        labels["app.kubernetes.io/name"] = service
    return labels


def _selector(cell: str, service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, CELL: cell}
