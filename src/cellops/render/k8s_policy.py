"""The objects that make a cell's namespace a boundary, applied before anything else in it:

- the Namespace, labelled for Pod Security Admission at the cell's level (enforce, warn
  and audit), so the cluster refuses the pods validation would refuse;
- NetworkPolicies: nothing in or out by default; the cell's pods reach each other (every
  dependency of a service runs in its cell), the cluster's DNS (kube-system's kube-dns on
  port 53) and are reached from the ingress controller's namespace when one is set;
- with a capacity: a ResourceQuota, and a LimitRange whose defaults give a container that
  sets no resources a small share, not the whole cell (without `default` and
  `defaultRequest`, Kubernetes defaults both to `max`: the whole capacity).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellops.render.desired import DesiredCell
from cellops.spec.cell import KubernetesBackend
from cellops.spec.fields import quantity_value

Obj = dict[str, Any]
POD_SECURITY = "pod-security.kubernetes.io"
NAMESPACE_NAME = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
NETWORKING = "networking.k8s.io/v1"
# What a container without resources gets (at most the cell's capacity): a request that
# lets many such pods fit in the quota, a limit that lets one burst.
DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}
DEFAULT_LIMIT = {"cpu": "1", "memory": "512Mi"}


def k8s_object(
    api: str, kind: str, name: str, namespace: str | None, labels: Mapping[str, str]
) -> Obj:
    metadata: Obj = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata}


def pod_security_of(cell: DesiredCell) -> str:
    """The cell's Pod Security level (render fills in the fleet's when the cell sets none)."""
    backend = cell.spec.backend
    assert isinstance(backend, KubernetesBackend), f"{cell.name} is not a Kubernetes cell"
    return backend.pod_security or "restricted"


def boundary_objects(cell: DesiredCell, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
    """The namespace, its network policies, quota and limits, in apply order."""
    level = pod_security_of(cell)
    ns = k8s_object("v1", "Namespace", namespace, None, labels)
    ns["metadata"]["labels"].update(
        {f"{POD_SECURITY}/{mode}": level for mode in ("enforce", "warn", "audit")}
    )
    backend = cell.spec.backend
    assert isinstance(backend, KubernetesBackend)
    return [
        ns,
        *network_policies(namespace, labels, backend.ingress_namespace),
        *capacity_objects(cell, namespace, labels),
    ]


def network_policies(
    namespace: str, labels: Mapping[str, str], ingress_namespace: str | None
) -> list[Obj]:
    def policy(name: str, types: list[str], **rules: Any) -> Obj:
        made = k8s_object(NETWORKING, "NetworkPolicy", name, namespace, labels)
        made["spec"] = {"podSelector": {}, "policyTypes": types, **rules}
        return made

    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    policies = [
        policy("deny-ingress", ["Ingress"]),
        policy("deny-egress", ["Egress"]),
        # inside a cell, services reach each other (contract consumers live in the cell)
        policy(
            "allow-cell",
            ["Ingress", "Egress"],
            ingress=[{"from": [{"podSelector": {}}]}],
            egress=[{"to": [{"podSelector": {}}]}],
        ),
        policy("allow-dns", ["Egress"], egress=[dns]),
    ]
    if ingress_namespace is not None:
        source = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: ingress_namespace}}}
        policies.append(
            policy("allow-ingress-controller", ["Ingress"], ingress=[{"from": [source]}])
        )
    return policies


def capacity_objects(cell: DesiredCell, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
    capacity = cell.spec.capacity
    maximum = {k: v for k, v in (("cpu", capacity.cpu), ("memory", capacity.memory)) if v}
    if not maximum:
        return []
    quota = k8s_object("v1", "ResourceQuota", "cell-capacity", namespace, labels)
    quota["spec"] = {
        "hard": {f"{scope}.{k}": v for scope in ("requests", "limits") for k, v in maximum.items()}
    }
    limits = k8s_object("v1", "LimitRange", "cell-limits", namespace, labels)
    default = default_limits(cell)
    request = {k: _smaller(DEFAULT_REQUEST[k], v) for k, v in default.items()}
    limits["spec"] = {
        "limits": [
            {"type": "Container", "max": maximum, "default": default, "defaultRequest": request}
        ]
    }
    return [quota, limits]


def default_limits(cell: DesiredCell) -> dict[str, str]:
    """The limit Kubernetes gives a container of the cell that sets none ({} without a
    capacity: no LimitRange, no default)."""
    capacity = cell.spec.capacity
    maximum = {k: v for k, v in (("cpu", capacity.cpu), ("memory", capacity.memory)) if v}
    return {k: _smaller(DEFAULT_LIMIT[k], v) for k, v in maximum.items()}


def _smaller(a: str, b: str) -> str:
    return a if quantity_value(a) <= quantity_value(b) else b
