"""Services with neither image nor run: their workloads are all in their manifests/ or
their chart. A team moves podinfo's chart and a dozen-deployment kustomize app into
Kubernetes cells without a placeholder image and without editing the apps' files; they
render, validate, apply to an API server (kmock), and report health and replicas."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cellops.backends.kubernetes.backend import KubernetesCells
from cellops.backends.kubernetes.manifests import ManifestCache
from cellops.health import Health
from cellops.pipeline import Compiler
from cellops.render.kubernetes import FROM_MANIFESTS, SERVICE
from cellops.source.git import GitSource, export_tree
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo
from tests.integration.moved_apps import SHOP_DEPLOYMENTS, moved_fleet
from tests.kubeserver import KubeServer

CELLOPS = str(Path(sys.executable).parent / "cellops")
SHOP_REPLICAS = 16  # the replicas of its twelve Deployments, as its files say


def cellops(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        time.sleep(0.05)


@pytest.fixture
def moved(tmp_path: Path) -> FleetRepo:
    return moved_fleet(tmp_path / "fleet")


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeServer]:
    with KubeServer() as server:
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kubeconfig")))
        yield server


def test_moved_apps_validate_from_the_commit_and_from_the_folder(moved: FleetRepo) -> None:
    for args in (["validate", moved.path], ["validate", "--path", moved.path]):
        result = cellops(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 services" in result.stdout


def test_moved_apps_run_in_a_kubernetes_cell_with_health_and_replicas(
    moved: FleetRepo, kube: KubeServer, tmp_path: Path
) -> None:
    desired = Compiler(GitSource(moved.path)).desired("HEAD")
    cell = desired.cells["canary"]
    assert all(s.spec.image is None and s.spec.run is None for s in cell.services.values())
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    built = ManifestCache(tmp_path / "built", lambda t, target: export_tree(moved.path, t, target))
    backend = KubernetesCells(store, built)
    try:
        backend.apply(cell, cell.services)
        sent = [s.body for s in kube.sent("PATCH")]
        kinds = [(b["kind"], b["metadata"]["name"]) for b in sent]
        shop = [b for b in sent if b["metadata"]["labels"].get(SERVICE) == "shop"]
        assert sum(b["kind"] == "Deployment" for b in shop) == SHOP_DEPLOYMENTS
        assert {"Ingress", "Role", "RoleBinding", "ServiceAccount", "ConfigMap"} <= {
            b["kind"] for b in shop
        }
        assert {("Deployment", "podinfo"), ("HorizontalPodAutoscaler", "podinfo")} <= set(kinds)
        # no placeholder: every object of the two services is the apps' own, and neither
        # hooks nor Helm's test pods are applied
        for body in sent:
            if body["metadata"]["labels"].get(SERVICE):
                assert FROM_MANIFESTS in body["metadata"]["annotations"], body["metadata"]
        assert not any(kind in ("Job", "Pod") for kind, _ in kinds)
        assert len(kinds) == len(set(kinds))
        # per-cell values: the canary (region eu) shows its own message
        podinfo = next(
            b for b in sent if b["kind"] == "Deployment" and b["metadata"]["name"] == "podinfo"
        )
        env = podinfo["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "PODINFO_UI_MESSAGE", "value": "hello from eu"} in env

        def healthy() -> bool:
            seen = backend.observe("canary")
            return all(seen.healthy_at(n, s.hash) for n, s in cell.services.items())

        until(healthy)
        seen = backend.observe("canary").services
        assert (seen["shop"].ready, seen["shop"].desired) == (SHOP_REPLICAS, SHOP_REPLICAS)
        assert seen["shop"].health is Health.HEALTHY
        assert seen["podinfo"].ready == seen["podinfo"].desired >= 1
        # the same commit rendered again is the same objects: nothing is sent again
        kube.clear()
        again = Compiler(GitSource(moved.path)).desired("HEAD").cells["canary"]
        assert {n: s.hash for n, s in again.services.items()} == {
            n: s.hash for n, s in cell.services.items()
        }
        fresh = ManifestCache(tmp_path / "again", lambda t, d: export_tree(moved.path, t, d))
        KubernetesCells(store, fresh).apply(again, again.services)
        assert kube.sent("PATCH") == []
    finally:
        backend.close()
        store.close()


def test_a_new_chart_value_is_a_new_version_that_reaches_the_cell(
    moved: FleetRepo, kube: KubeServer, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    built = ManifestCache(tmp_path / "built", lambda t, target: export_tree(moved.path, t, target))
    backend = KubernetesCells(store, built)
    try:
        before = Compiler(GitSource(moved.path)).desired("HEAD").cells["us-1"]
        backend.apply(before, before.services)
        until(
            lambda: backend.observe("us-1").healthy_at("podinfo", before.services["podinfo"].hash)
        )
        moved.replace(
            "services/podinfo/values/common.yaml", "ui: {message: hello}", "ui: {message: hi}"
        )
        moved.commit("podinfo says hi")
        after = Compiler(GitSource(moved.path)).desired("HEAD").cells["us-1"]
        assert after.services["podinfo"].hash != before.services["podinfo"].hash
        assert after.services["shop"].hash == before.services["shop"].hash
        kube.clear()
        backend.apply(after, after.services)
        paths = [s.path for s in kube.sent("PATCH")]
        assert paths == ["/apis/apps/v1/namespaces/cell-us-1/deployments/podinfo"]
        until(lambda: backend.observe("us-1").healthy_at("podinfo", after.services["podinfo"].hash))
    finally:
        backend.close()
        store.close()


def test_a_manifests_only_service_in_a_local_cell_is_refused_saying_why(tmp_path: Path) -> None:
    fleet = FleetRepo(tmp_path / "fleet")
    fleet.write(
        "services/jobs/service.yaml",
        "apiVersion: cellops.dev/v1\nkind: Service\nmetadata: {name: jobs}\nspec: {}\n",
    )
    fleet.write("services/jobs/manifests/cm.yaml", CONFIG_MAP.format(name="jobs-settings"))
    fleet.commit("a manifests-only service, placed on every cell")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "services/jobs/service.yaml" in result.stdout
    assert "has neither image nor run: its workloads come from services/jobs/manifests/" in (
        result.stdout
    )
    assert "which only Kubernetes cells apply" in result.stdout


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {{a: b}}\n"


# -- how manifests/ is read -------------------------------------------------------------------
def k8s_fleet(tmp_path: Path) -> FleetRepo:
    fleet = FleetRepo(tmp_path / "fleet", None)
    moved = moved_fleet(tmp_path / "moved")
    for name in ("cellops.yaml", "cells/canary.yaml", "services/shop/service.yaml"):
        fleet.write(name, moved.read(name))
    return fleet


def test_plain_yaml_skips_a_nested_kustomization(tmp_path: Path) -> None:
    fleet = k8s_fleet(tmp_path)
    fleet.write("services/shop/manifests/settings.yaml", CONFIG_MAP.format(name="settings"))
    fleet.write("services/shop/manifests/base/kustomization.yaml", "resources: [flags.yaml]\n")
    fleet.write("services/shop/manifests/base/flags.yaml", CONFIG_MAP.format(name="flags"))
    fleet.commit("plain files, one folder a kustomize base")
    result = cellops("render", fleet.path, "--cell", "canary", "-o", "yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "name: settings" in result.stdout and "name: flags" in result.stdout


def test_a_file_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    fleet = k8s_fleet(tmp_path)
    fleet.write("services/shop/manifests/settings.yaml", CONFIG_MAP.format(name="settings"))
    fleet.write("services/shop/manifests/notes.yaml", "owner: team-shop\n")
    fleet.commit("a file of notes")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "services/shop/manifests/notes.yaml: document 1 is not a Kubernetes object" in (
        result.stdout
    )


@pytest.mark.parametrize(
    ("entry", "outcome"),
    [
        # inside manifests/, named through its parent: the same file either way
        ("../manifests/app.yaml", "valid"),
        # a base elsewhere in the fleet repo: outside what the service's version covers
        ("../../../bases/app", "'../../../bases/app' is outside manifests/"),
    ],
)
def test_validate_reads_the_same_files_from_the_folder_and_from_the_commit(
    tmp_path: Path, entry: str, outcome: str
) -> None:
    fleet = k8s_fleet(tmp_path)
    fleet.write("services/shop/manifests/app.yaml", CONFIG_MAP.format(name="app"))
    fleet.write("bases/app/kustomization.yaml", "resources: [app.yaml]\n")
    fleet.write("bases/app/app.yaml", CONFIG_MAP.format(name="shared"))
    fleet.write("services/shop/manifests/kustomization.yaml", f"resources: [{entry}]\n")
    fleet.commit(f"a kustomization reaching {entry}")
    outputs = [cellops("validate", *args) for args in ([fleet.path], ["--path", fleet.path])]
    assert [o.returncode for o in outputs] == [0, 0] if outcome == "valid" else [1, 1]
    for output in outputs:
        assert outcome in output.stdout, output.stdout
