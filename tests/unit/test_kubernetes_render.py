"""Kubernetes objects of every cell of the Kubernetes example fleet: valid against the
API schema of the fleet's Kubernetes version (kubernetes-validate, strict), secure by
default, labelled, and stable where nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from cellops.pipeline import Compiler
from cellops.render import DesiredFleet
from cellops.render.k8s_podsecurity import violations
from cellops.render.kubernetes import MANAGED_BY, REVISION, adopt, cell_objects
from cellops.source.git import GitSource
from tests.fleetrepo import FleetRepo

K8S_FLEET = Path(__file__).parents[2] / "examples" / "k8s-fleet"


@pytest.fixture
def k8s_fleet(tmp_path: Path) -> FleetRepo:
    repo = FleetRepo(tmp_path / "k8s", K8S_FLEET)
    repo.commit("kubernetes fleet")
    return repo


def rendered(repo: FleetRepo, rev: str = "HEAD") -> tuple[DesiredFleet, str]:
    compiler = Compiler(GitSource(repo.path))
    revision = compiler.revision(rev)
    return compiler.desired(rev), revision.fleet.spec.kubernetes.version


def test_every_object_of_every_cell_is_valid_for_the_target_version(k8s_fleet: FleetRepo) -> None:
    fleet, version = rendered(k8s_fleet)
    count = 0
    for cell in fleet.cells.values():
        for obj in cell_objects(cell, fleet.revision):
            kubernetes_validate.validate(obj, version, strict=True)
            count += 1
    # per cell: namespace, 4 network policies, quota, limits; per service: account,
    # deployment, service and (2+ replicas) disruption budget
    assert count == 3 * (7 + 4 + 4)


def test_an_invalid_object_is_caught_by_the_same_validation(k8s_fleet: FleetRepo) -> None:
    fleet, version = rendered(k8s_fleet)
    deployment = next(
        o for o in cell_objects(fleet.cells["eu-1"], fleet.revision) if o["kind"] == "Deployment"
    )
    deployment["spec"]["replica"] = 3  # a typo strict validation must refuse
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)


def test_containers_are_locked_down_and_probes_mapped(k8s_fleet: FleetRepo) -> None:
    fleet, _ = rendered(k8s_fleet)
    objects = cell_objects(fleet.cells["us-1"], fleet.revision)
    payments = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "payments"
    )
    pod = payments["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["startupProbe"]["tcpSocket"] == {"port": "http"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["periodSeconds"] == 10  # the Kubernetes default
    assert container["livenessProbe"]["exec"] == {"command": ["/bin/healthcheck"]}
    assert {"name": "CURRENCY", "value": "USD"} in container["env"]  # the us override
    assert container["image"].startswith("123456789012.dkr.ecr.")
    assert payments["spec"]["replicas"] == 3


def test_cellops_own_pods_meet_the_restricted_level(k8s_fleet: FleetRepo) -> None:
    fleet, _ = rendered(k8s_fleet)
    for cell in fleet.cells.values():
        for obj in cell_objects(cell, fleet.revision):
            assert violations(obj, "restricted") == [], obj["metadata"]["name"]


def test_labels_namespace_and_irsa(k8s_fleet: FleetRepo) -> None:
    fleet, _ = rendered(k8s_fleet)
    objects = cell_objects(fleet.cells["eu-1"], fleet.revision)
    assert objects[0]["kind"] == "Namespace" and objects[0]["metadata"]["name"] == "cell-eu-1"
    for obj in objects:
        assert obj["metadata"]["labels"][MANAGED_BY] == "cellops"
        assert obj["metadata"]["labels"]["cellops.dev/cell"] == "eu-1"
        assert obj["metadata"]["labels"][REVISION] == fleet.revision[:12]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "cell-eu-1"
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert {a["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] for a in accounts} == {
        "arn:aws:iam::123456789012:role/cell-eu-1"
    }


def test_an_unchanged_service_keeps_its_pod_template(k8s_fleet: FleetRepo) -> None:
    before, _ = rendered(k8s_fleet)
    k8s_fleet.replace(
        "services/payments/service.yaml", "SERVICE_NAME: payments", "SERVICE_NAME: payments2"
    )
    after_rev = k8s_fleet.commit("payments env")
    after, _ = rendered(k8s_fleet, after_rev)

    def templates(fleet: DesiredFleet) -> dict[str, object]:
        return {
            o["metadata"]["name"]: o["spec"]["template"]
            for o in cell_objects(fleet.cells["eu-1"], fleet.revision)
            if o["kind"] == "Deployment"
        }

    old, new = templates(before), templates(after)
    assert old["ledger"] == new["ledger"]  # the revision label stays off the pod template
    assert old["payments"] != new["payments"]


# -- the namespace is a boundary -------------------------------------------------------------
def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_the_namespace_enforces_pod_security_restricted_by_default(k8s_fleet: FleetRepo) -> None:
    fleet, _ = rendered(k8s_fleet)
    labels = cell_objects(fleet.cells["eu-1"], fleet.revision)[0]["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_pod_security_is_the_fleets_unless_the_cell_sets_its_own(k8s_fleet: FleetRepo) -> None:
    before, _ = rendered(k8s_fleet)
    k8s_fleet.replace(
        "cellops.yaml", 'version: "1.32"', 'version: "1.32"\n    podSecurity: baseline'
    )
    k8s_fleet.replace(
        "cells/us-1.yaml", "type: kubernetes", "type: kubernetes\n    podSecurity: privileged"
    )
    after, _ = rendered(k8s_fleet, k8s_fleet.commit("baseline, and privileged in us-1"))

    def level(fleet: DesiredFleet, cell: str) -> str:
        namespace = cell_objects(fleet.cells[cell], fleet.revision)[0]
        return str(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"])

    assert (level(after, "eu-1"), level(after, "us-1")) == ("baseline", "privileged")
    # a new level must reach the cells: it is part of what their services' versions cover
    for cell in ("eu-1", "us-1"):
        old, new = before.cells[cell].services, after.cells[cell].services
        assert all(old[name].hash != new[name].hash for name in old)


def test_egress_is_denied_but_inside_the_cell_and_to_dns(k8s_fleet: FleetRepo) -> None:
    fleet, _ = rendered(k8s_fleet)
    objects = cell_objects(fleet.cells["eu-1"], fleet.revision)
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"deny-ingress", "deny-egress", "allow-cell", "allow-dns"}
    assert policies["deny-egress"] == {"podSelector": {}, "policyTypes": ["Egress"]}
    assert policies["allow-cell"]["egress"] == [{"to": [{"podSelector": {}}]}]
    (dns,) = policies["allow-dns"]["egress"]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_the_ingress_controller_may_reach_the_cell_when_the_fleet_names_it(
    k8s_fleet: FleetRepo,
) -> None:
    k8s_fleet.replace(
        "cellops.yaml", 'version: "1.32"', 'version: "1.32"\n    ingressNamespace: ingress-nginx'
    )
    k8s_fleet.replace(
        "cells/us-1.yaml", "type: kubernetes", "type: kubernetes\n    ingressNamespace: traefik"
    )
    fleet, version = rendered(k8s_fleet, k8s_fleet.commit("an ingress controller"))
    for cell, namespace in (("eu-1", "ingress-nginx"), ("us-1", "traefik")):
        policy = find(
            cell_objects(fleet.cells[cell], fleet.revision),
            "NetworkPolicy",
            "allow-ingress-controller",
        )
        kubernetes_validate.validate(policy, version, strict=True)
        assert policy["spec"]["ingress"] == [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        }
                    }
                ]
            }
        ]


def test_a_container_without_resources_gets_a_share_not_the_whole_cell(
    k8s_fleet: FleetRepo,
) -> None:
    k8s_fleet.replace("cells/us-1.yaml", 'cpu: "8"', "cpu: 500m")
    fleet, _ = rendered(k8s_fleet, k8s_fleet.commit("a small cell"))
    (eu,) = find(cell_objects(fleet.cells["eu-1"], fleet.revision), "LimitRange", "cell-limits")[
        "spec"
    ]["limits"]
    assert eu == {
        "type": "Container",
        "max": {"cpu": "8", "memory": "16Gi"},
        "default": {"cpu": "1", "memory": "512Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    }
    (us,) = find(cell_objects(fleet.cells["us-1"], fleet.revision), "LimitRange", "cell-limits")[
        "spec"
    ]["limits"]
    assert us["default"]["cpu"] == "500m"  # never above the cell's capacity


ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "reader", "namespace": "podinfo"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
    "subjects": [
        {"kind": "ServiceAccount", "name": "here", "namespace": "podinfo"},
        {"kind": "ServiceAccount", "name": "unset"},
        {"kind": "ServiceAccount", "name": "elsewhere", "namespace": "cell-us-1"},
        {"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"},
    ],
}


def test_a_role_bindings_own_accounts_move_into_the_cell_with_it() -> None:
    (moved,) = adopt([ROLE_BINDING], "cell-eu-1", {})
    assert moved["metadata"]["namespace"] == "cell-eu-1"
    assert [s.get("namespace") for s in moved["subjects"]] == [
        "cell-eu-1",
        "cell-eu-1",
        "cell-us-1",  # another namespace: kept, and refused at validation
        None,
    ]
    assert ROLE_BINDING["subjects"][1] == {"kind": "ServiceAccount", "name": "unset"}  # a copy
