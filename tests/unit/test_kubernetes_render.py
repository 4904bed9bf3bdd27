"""Kubernetes objects of every cell of the Kubernetes example fleet: valid against the
API schema of the fleet's Kubernetes version (kubernetes-validate, strict), secure by
default, labelled, and stable where nothing changed."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from cellops.pipeline import Compiler
from cellops.render import DesiredFleet
from cellops.render.kubernetes import MANAGED_BY, REVISION, cell_objects
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
    # per cell: namespace, 2 network policies, quota, limits; per service: account,
    # deployment, service and (2+ replicas) disruption budget
    assert count == 3 * (5 + 4 + 4)


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
