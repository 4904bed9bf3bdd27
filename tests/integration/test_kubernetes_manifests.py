"""Services bring their own Kubernetes manifests: podinfo's real kustomize bases (from
shared/realworld), built with kubectl kustomize, adopted into each cell's namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.fleetrepo import FleetRepo

ROOT = Path(__file__).parents[2]
PODINFO = ROOT.parent / "shared" / "realworld" / "podinfo"
CELLOPS = str(Path(sys.executable).parent / "cellops")

pytestmark = pytest.mark.skipif(not PODINFO.is_dir(), reason="shared/realworld is not beside")


@pytest.fixture
def fleet(tmp_path: Path) -> FleetRepo:
    repo = FleetRepo(tmp_path / "k8s", ROOT / "examples" / "k8s-fleet")
    shutil.copytree(PODINFO / "backend", repo.path / "services/payments/manifests")
    shutil.copytree(PODINFO / "cache", repo.path / "services/ledger/manifests")
    repo.commit("payments and ledger bring podinfo's bases")
    return repo


def render(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, "render", *map(str, args), "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or dict(os.environ),
    )


def test_podinfo_bases_render_into_the_cell(fleet: FleetRepo) -> None:
    result = render(fleet.path, "--cell", "eu-1")
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    # podinfo's objects, including what kustomize generated from redis.conf
    assert {
        ("Deployment", "backend"),
        ("HorizontalPodAutoscaler", "backend"),
        ("Service", "cache"),
        ("Deployment", "cache"),
    } <= names
    assert any(kind == "ConfigMap" and name.startswith("redis-config-") for kind, name in names)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "cell-eu-1"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cellops"
    backend = next(
        o for o in objects if o["metadata"]["name"] == "backend" and o["kind"] == "Deployment"
    )
    assert backend["metadata"]["labels"]["cellops.dev/service"] == "payments"
    # the files as they are give the same objects as the commit
    same = render("--path", fleet.path, "--cell", "eu-1")
    assert same.returncode == 0, same.stderr
    assert {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(same.stdout)} == names


def test_cluster_scoped_objects_are_refused(fleet: FleetRepo) -> None:
    fleet.write(
        "services/payments/manifests/role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: everything}\nrules: []\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:\n",
        "resources:\n  - role.yaml\n",
    )
    fleet.commit("a cluster role")
    result = render(fleet.path, "--cell", "eu-1")
    assert result.returncode == 1
    assert "ClusterRole 'everything' is cluster-scoped" in result.stderr


def test_a_kustomization_without_kubectl_says_so(fleet: FleetRepo, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = render(fleet.path, "--cell", "eu-1", env={**os.environ, "PATH": str(empty)})
    assert result.returncode == 1
    assert "needs kubectl (with kustomize) on PATH" in result.stderr


def test_plain_yaml_manifests_need_no_kubectl(fleet: FleetRepo) -> None:
    (fleet.path / "services/ledger/manifests/kustomization.yaml").unlink()
    (fleet.path / "services/ledger/manifests/redis.conf").unlink()
    fleet.replace("services/ledger/manifests/deployment.yaml", "redis-config", "redis-settings")
    fleet.commit("plain files")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    shutil.rmtree(fleet.path / "services/payments/manifests")
    fleet.commit("payments without manifests")
    result = render(fleet.path, "--cell", "us-1", env=env)
    assert result.returncode == 0, result.stderr
    names = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(result.stdout)}
    assert {("Service", "cache"), ("Deployment", "cache")} <= names


def cellops(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_objects_are_validated_before_a_revision_is_accepted(fleet: FleetRepo) -> None:
    assert cellops("validate", fleet.path).returncode == 0
    fleet.replace(
        "services/payments/manifests/deployment.yaml",
        "  minReadySeconds: 3",
        "  minReadySeconds: 3\n  minReadySecond: 3",
    )
    fleet.commit("a typo in podinfo's deployment")
    for command in ("validate", "plan"):
        result = cellops(command, fleet.path)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "services/payments/manifests: Deployment backend" in result.stdout
        assert "not valid for Kubernetes 1.32" in result.stdout
        assert "minReadySecond" in result.stdout
    # the same, on the files before committing
    path_result = cellops("validate", "--path", fleet.path)
    assert path_result.returncode == 1 and "minReadySecond" in path_result.stdout


def test_a_custom_resource_is_a_warning_not_a_rejection(fleet: FleetRepo) -> None:
    fleet.write(
        "services/payments/manifests/monitor.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
        "metadata: {name: backend}\nspec: {endpoints: [{port: http}]}\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:",
        "resources:\n  - monitor.yaml",
    )
    fleet.commit("payments is scraped")
    result = cellops("validate", fleet.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "services/payments/manifests: ServiceMonitor backend: warning: no schema" in result.stdout
    )


def test_a_kubernetes_version_without_schemas_is_blamed_on_the_fleet(fleet: FleetRepo) -> None:
    fleet.replace("cellops.yaml", 'version: "1.32"', 'version: "1.99"')
    fleet.commit("a version from the future")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "cellops.yaml: spec.kubernetes.version: kubernetes-validate has no schemas" in (
        result.stdout
    )


def test_an_object_rendered_twice_is_rejected(fleet: FleetRepo) -> None:
    fleet.write(
        "services/payments/manifests/also-payments.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\nspec: {ports: [{port: 80}]}\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:",
        "resources:\n  - also-payments.yaml",
    )
    fleet.commit("payments' manifests bring a Service cellops renders too")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert (
        "services/payments/manifests: Service payments: the same object is already rendered"
        " from services/payments/service.yaml" in result.stdout
    )
