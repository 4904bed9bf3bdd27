"""What keeps a cell's objects inside its namespace, object by object: the kinds a cell may
hold, what a RoleBinding may grant, the Pod Security rules every pod template must meet
(in every kind of workload and every kind of container), and the image policy on every
container a service brings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cellops.backends.kubernetes.containment import (
    CellRules,
    FleetRules,
    object_problems,
    scope_problem,
)
from cellops.render.k8s_podsecurity import violations
from cellops.spec.fleet import FleetSpec

Obj = dict[str, Any]
NS = "cell-eu-1"
SAFE_CONTAINER: Obj = {
    "name": "main",
    "image": "registry.example.com/app@sha256:" + "a" * 64,
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}
SAFE_POD: Obj = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [SAFE_CONTAINER],
}


def fleet(**kubernetes: object) -> FleetRules:
    policy = {"requireDigest": True, "allowedRegistries": ["registry.example.com"]}
    return FleetRules.of(
        FleetSpec.model_validate({"kubernetes": kubernetes, "imagePolicy": policy})
    )


def deployment(pod: Obj | None = None, kind: str = "Deployment") -> Obj:
    spec = copy.deepcopy(SAFE_POD if pod is None else pod)
    template = {"metadata": {"labels": {"app": "x"}}, "spec": spec}
    bodies: dict[str, tuple[str, Obj]] = {
        "Deployment": ("apps/v1", {"template": template}),
        "StatefulSet": ("apps/v1", {"template": template}),
        "DaemonSet": ("apps/v1", {"template": template}),
        "ReplicaSet": ("apps/v1", {"template": template}),
        "Job": ("batch/v1", {"template": template}),
        "CronJob": ("batch/v1", {"jobTemplate": {"spec": {"template": template}}}),
        "Pod": ("v1", spec),
    }
    api, body = bodies[kind]
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": body}


def fields(obj: Obj, level: str = "restricted") -> list[str]:
    return [field.rsplit(".", 1)[-1] for field, _ in violations(obj, level)]


# -- scope ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration"),
    ],
)
def test_cluster_scoped_kinds_the_deny_list_missed_are_refused(api: str, kind: str) -> None:
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}}
    assert f"{kind} 'x' is cluster-scoped" in str(scope_problem(obj, fleet()))


def test_a_custom_kind_is_refused_unless_declared_namespaced() -> None:
    issuer = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "x"},
    }
    problem = scope_problem(issuer, fleet())
    assert problem is not None and "not a kind cellops knows to be namespaced" in problem
    assert "namespacedKinds: [{group: cert-manager.io, kind: ClusterIssuer}]" in problem
    certificate = {**issuer, "kind": "Certificate"}
    declared = fleet(namespacedKinds=[{"group": "cert-manager.io", "kind": "Certificate"}])
    assert scope_problem(certificate, declared) is None
    assert scope_problem(issuer, declared) is not None
    assert scope_problem(deployment(), fleet()) is None


def test_a_built_in_cluster_scoped_kind_cannot_be_declared_namespaced() -> None:
    with pytest.raises(ValueError, match=r"ClusterRole .* is cluster-scoped"):
        fleet(namespacedKinds=[{"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"}])


# -- RBAC -----------------------------------------------------------------------------------
def binding(role: str, *subjects: Obj, kind: str = "ClusterRole") -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "grant", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": list(subjects),
    }


def problems(obj: Obj, own: bool = True, **kubernetes: object) -> list[str]:
    rules = CellRules(NS, "restricted", (("cpu", "1"), ("memory", "512Mi")))
    found = object_problems(obj, "services/api/manifests", own, fleet(**kubernetes), rules)
    assert all(p.file == "services/api/manifests" for p in found)
    return [f"{p.field}: {p.message}" for p in found]


def test_a_binding_grants_view_or_edit_or_a_role_to_the_cells_own_accounts() -> None:
    mine = {"kind": "ServiceAccount", "name": "api", "namespace": NS}
    people = {"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"}
    for role, kind in (("view", "ClusterRole"), ("edit", "ClusterRole"), ("reader", "Role")):
        assert problems(binding(role, mine, people, kind=kind)) == []


@pytest.mark.parametrize("role", ["admin", "cluster-admin", "system:controller:foo"])
def test_a_binding_to_a_stronger_cluster_role_is_refused_unless_the_fleet_allows_it(
    role: str,
) -> None:
    (problem,) = problems(binding(role, {"kind": "ServiceAccount", "name": "a", "namespace": NS}))
    assert problem.startswith(f"RoleBinding grant: roleRef.name: grants ClusterRole {role!r}")
    assert "allowedClusterRoles" in problem
    assert problems(binding("admin"), allowedClusterRoles=["admin"]) == []


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "ServiceAccount", "name": "api", "namespace": "cell-us-1"},
        {"kind": "User", "name": "system:serviceaccount:cell-us-1:api"},
        {"kind": "Group", "name": "system:serviceaccounts"},
        {"kind": "Group", "name": "system:serviceaccounts:cell-us-1"},
        {"kind": "Group", "name": "system:authenticated"},
    ],
)
def test_a_grant_to_accounts_outside_the_cell_is_refused(subject: Obj) -> None:
    (problem,) = problems(binding("view", subject))
    assert problem.startswith("RoleBinding grant: subjects[0]: ")


# -- Pod Security -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]
)
def test_every_workload_kind_is_checked(kind: str) -> None:
    assert fields(deployment(kind=kind)) == []
    pod = copy.deepcopy(SAFE_POD)
    pod["containers"][0]["securityContext"]["privileged"] = True
    (field, message), *_ = violations(deployment(pod, kind), "baseline")
    assert field.endswith("containers[0].securityContext.privileged")
    assert "privileged containers are not allowed" in message and "level baseline" in message


BASELINE_BREACHES: list[tuple[str, Obj, str]] = [
    ("hostNetwork", {"hostNetwork": True}, "hostNetwork"),
    ("hostPID", {"hostPID": True}, "hostPID"),
    ("hostIPC", {"hostIPC": True}, "hostIPC"),
    ("hostPath", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "hostPath"),
    ("sysctl", {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}, "name"),
    ("seccomp", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "type"),
    ("selinux", {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}, "type"),
]


@pytest.mark.parametrize(
    ("what", "pod", "field"), BASELINE_BREACHES, ids=[b[0] for b in BASELINE_BREACHES]
)
def test_baseline_refuses_the_known_escalations_of_a_pod(what: str, pod: Obj, field: str) -> None:
    assert field in fields(deployment({**copy.deepcopy(SAFE_POD), **pod}), "baseline"), what


CONTAINER_BREACHES: list[tuple[Obj, str]] = [
    ({"securityContext": {"privileged": True}}, "privileged"),
    ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "add[0]"),
    ({"securityContext": {"procMount": "Unmasked"}}, "procMount"),
    ({"ports": [{"containerPort": 80, "hostPort": 80}]}, "hostPort"),
    ({"securityContext": {"windowsOptions": {"hostProcess": True}}}, "hostProcess"),
]


@pytest.mark.parametrize("field", ["containers", "initContainers", "ephemeralContainers"])
@pytest.mark.parametrize(("change", "name"), CONTAINER_BREACHES)
def test_baseline_checks_every_kind_of_container(field: str, change: Obj, name: str) -> None:
    container = {"name": "c", "image": "registry.example.com/x@sha256:" + "b" * 64, **change}
    pod = {**copy.deepcopy(SAFE_POD), field: [container]}
    found = [f for f, _ in violations(deployment(pod), "baseline")]
    assert any(f.startswith(f"spec.template.spec.{field}[0]") and f.endswith(name) for f in found)


def test_restricted_requires_non_root_no_escalation_all_dropped_and_seccomp() -> None:
    bare = {"containers": [{"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.14.1"}]}
    assert fields(deployment(bare), "baseline") == []
    assert fields(deployment(bare)) == [
        "runAsNonRoot",
        "type",  # seccompProfile.type
        "allowPrivilegeEscalation",
        "drop",
    ]
    # the pod's securityContext serves every container; a container may not undo it
    pod = copy.deepcopy(SAFE_POD)
    pod["containers"][0]["securityContext"]["runAsNonRoot"] = False
    pod["securityContext"]["runAsUser"] = 0
    assert fields(deployment(pod)) == ["runAsNonRoot", "runAsUser"]
    pod = copy.deepcopy(SAFE_POD)
    pod["volumes"] = [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]
    pod["containers"][0]["securityContext"]["capabilities"]["add"] = ["CHOWN"]
    assert fields(deployment(pod)) == ["nfs", "add[0]"]
    assert fields(deployment(pod), "privileged") == []


# -- images and resources ---------------------------------------------------------------------
def test_every_container_of_a_services_own_objects_follows_the_image_policy() -> None:
    pod = copy.deepcopy(SAFE_POD)
    pod["initContainers"] = [{**SAFE_CONTAINER, "name": "init", "image": "docker.io/busybox:1"}]
    pod["ephemeralContainers"] = [
        {**SAFE_CONTAINER, "name": "debug", "image": "ghcr.io/x@sha256:" + "c" * 64}
    ]
    found = problems(deployment(pod, "CronJob"))
    prefix = "CronJob x: spec.jobTemplate.spec.template.spec"
    assert found == [
        f"{prefix}.initContainers[0].image: 'docker.io/busybox:1' is not pinned by digest:"
        " expected docker.io/busybox@sha256:<digest> (the fleet's imagePolicy.requireDigest"
        " is on)",
        f"{prefix}.initContainers[0].image: registry 'docker.io' is not allowed: expected one"
        " of registry.example.com",
        f"{prefix}.ephemeralContainers[0].image: registry 'ghcr.io' is not allowed: expected"
        " one of registry.example.com",
    ]
    assert problems(deployment(pod, "CronJob"), own=False) == []  # cellops' own: service.yaml


def test_a_request_above_the_default_limit_needs_a_limit() -> None:
    pod = copy.deepcopy(SAFE_POD)
    pod["containers"][0]["resources"] = {"requests": {"cpu": "2", "memory": "64Mi"}}
    (problem,) = problems(deployment(pod))
    assert problem.startswith("Deployment x: spec.template.spec.containers[0].resources.limits.cpu")
    pod["containers"][0]["resources"]["limits"] = {"cpu": "2"}
    assert problems(deployment(pod)) == []
