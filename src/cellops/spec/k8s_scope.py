"""Which built-in Kubernetes kinds live in a namespace, and which are cluster-scoped.

A cell owns its namespace and nothing else, so a kind is accepted in a cell only when it
is known to be namespaced: a built-in kind listed here, or a custom kind the fleet
declares (`spec.kubernetes.namespacedKinds`); at apply time the server's discovery has
the last word (`backends.kubernetes.api` refuses a kind it says is cluster-scoped).

The table comes from the official Kubernetes Python client (36.0.3, Kubernetes 1.36),
which is generated from the API server's OpenAPI paths: a kind is namespaced when the
client reads it at `/api[s]/<group>/<version>/namespaces/{namespace}/<plural>/{name}`,
cluster-scoped when it reads it at `/api[s]/<group>/<version>/<plural>/{name}`. A kind's
scope never changes between versions. tests/unit/test_k8s_scope.py derives the table
again from the installed client and fails, showing the rows to paste here, when the two
differ (after upgrading the client). Kinds with no stored objects (reviews, Binding,
Eviction, Scale) and alpha kinds the client no longer has are in neither set: unknown,
so refused unless declared. Pure: no I/O.
"""

from __future__ import annotations

_NAMESPACED = {
    "": "ConfigMap Endpoints Event LimitRange PersistentVolumeClaim Pod PodTemplate"
    " ReplicationController ResourceQuota Secret Service ServiceAccount",
    "apps": "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet",
    "autoscaling": "HorizontalPodAutoscaler",
    "batch": "CronJob Job",
    "certificates.k8s.io": "PodCertificateRequest",
    "coordination.k8s.io": "Lease LeaseCandidate",
    "discovery.k8s.io": "EndpointSlice",
    "events.k8s.io": "Event",
    "networking.k8s.io": "Ingress NetworkPolicy",
    "policy": "PodDisruptionBudget",
    "rbac.authorization.k8s.io": "Role RoleBinding",
    "resource.k8s.io": "ResourceClaim ResourceClaimTemplate",
    "scheduling.k8s.io": "PodGroup Workload",
    "storage.k8s.io": "CSIStorageCapacity",
}
_CLUSTER_SCOPED = {
    "": "Namespace Node PersistentVolume",
    "admissionregistration.k8s.io": "MutatingAdmissionPolicy MutatingAdmissionPolicyBinding"
    " MutatingWebhookConfiguration ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding"
    " ValidatingWebhookConfiguration",
    "apiextensions.k8s.io": "CustomResourceDefinition",
    "apiregistration.k8s.io": "APIService",
    "certificates.k8s.io": "CertificateSigningRequest ClusterTrustBundle",
    "flowcontrol.apiserver.k8s.io": "FlowSchema PriorityLevelConfiguration",
    "internal.apiserver.k8s.io": "StorageVersion",
    "networking.k8s.io": "IPAddress IngressClass ServiceCIDR",
    "node.k8s.io": "RuntimeClass",
    "rbac.authorization.k8s.io": "ClusterRole ClusterRoleBinding",
    "resource.k8s.io": "DeviceClass DeviceTaintRule ResourcePoolStatusRequest ResourceSlice",
    "scheduling.k8s.io": "PriorityClass",
    "storage.k8s.io": "CSIDriver CSINode StorageClass VolumeAttachment VolumeAttributesClass",
    "storagemigration.k8s.io": "StorageVersionMigration",
}

NAMESPACED = frozenset(
    (group, kind) for group, kinds in _NAMESPACED.items() for kind in kinds.split()
)
CLUSTER_SCOPED = frozenset(
    (group, kind) for group, kinds in _CLUSTER_SCOPED.items() for kind in kinds.split()
)


def group_of(api_version: str) -> str:
    """`apps/v1` -> `apps`; the core group (`v1`) is ``""``."""
    return api_version.rpartition("/")[0]
