"""Services that take a Helm chart: podinfo's real chart (shared/realworld) with its
optional parts switched on, rendered offline with Helm's SDK into each cell, and what a
cell refuses of a chart (crds/, output that changes on every render). The OCI form is
pulled from a registry on 127.0.0.1 (Debian's docker-registry) when it is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from cellops.backends.kubernetes.manifests import ManifestCache, own_objects
from cellops.pipeline import Compiler
from cellops.render.kubernetes import FROM_MANIFESTS, cell_objects
from cellops.source.git import GitSource, export_tree
from tests.fleetrepo import FleetRepo
from tests.imagekit import running_registry
from tests.integration.moved_apps import PODINFO_CHART, STAND_IN_CHART, moved_fleet

CELLOPS = str(Path(sys.executable).parent / "cellops")
ALL_PARTS = """\
      redis: {enabled: true}
      serviceMonitor: {enabled: true}
      certificate: {create: true}
      httpRoute: {enabled: true}
"""


def cellops(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def fleet(tmp_path: Path) -> FleetRepo:
    repo = moved_fleet(tmp_path / "fleet")
    repo.replace("services/podinfo/service.yaml", "      hooks:", ALL_PARTS + "      hooks:")
    repo.commit("every optional part of podinfo on")
    return repo


@pytest.fixture
def any_chart(tmp_path: Path) -> FleetRepo:
    """The fleet with a stand-in chart (tests/fixtures/charts/stand-in) where podinfo's
    own is not needed: these tests run without shared/realworld."""
    return moved_fleet(tmp_path / "fleet", STAND_IN_CHART)


def objects_of(repo: FleetRepo, cell: str, scratch: Path) -> list[dict[str, Any]]:
    fleet = Compiler(GitSource(repo.path)).desired("HEAD")
    desired = fleet.cells[cell]
    cache = ManifestCache(scratch, lambda tree, target: export_tree(repo.path, tree, target))
    return cell_objects(desired, fleet.revision, own_objects(cache, desired, desired.services))


def podinfo(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects
        if o["metadata"]["labels"].get("cellops.dev/service") == "podinfo"
    }


def test_podinfo_with_every_part_on_renders_into_the_cell(fleet: FleetRepo, tmp_path: Path) -> None:
    objects = podinfo(objects_of(fleet, "canary", tmp_path / "built"))
    assert set(objects) == {
        ("Deployment", "podinfo"),
        ("Service", "podinfo"),
        ("ServiceAccount", "podinfo"),
        ("HorizontalPodAutoscaler", "podinfo"),
        ("PodDisruptionBudget", "podinfo"),
        ("Ingress", "podinfo"),
        ("HTTPRoute", "podinfo"),
        ("ServiceMonitor", "podinfo"),
        ("Certificate", "podinfo"),
        ("Deployment", "podinfo-redis"),
        ("Service", "podinfo-redis"),
        ("ConfigMap", "podinfo-redis"),
    }  # no hook Job, no test Pod (random names), nothing cellops made up
    for obj in objects.values():
        assert obj["metadata"]["namespace"] == "cell-canary"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cellops"
        assert obj["metadata"]["annotations"][FROM_MANIFESTS] == "true"
    source = objects[("Deployment", "podinfo")]["metadata"]["annotations"]
    assert source["cellops.dev/from-chart"] == "services/podinfo/chart/templates/deployment.yaml"
    # values: the chart's, then values/common.yaml, then spec.chart.values, then the
    # override of the cell's region
    pod = objects[("Deployment", "podinfo")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001  # values/common.yaml
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PODINFO_UI_MESSAGE"] == "hello from eu"
    assert objects[("HorizontalPodAutoscaler", "podinfo")]["spec"]["maxReplicas"] == 6
    elsewhere = podinfo(objects_of(fleet, "us-1", tmp_path / "us"))
    pod = elsewhere[("Deployment", "podinfo")]["spec"]["template"]["spec"]
    assert {"name": "PODINFO_UI_MESSAGE", "value": "hello"} in pod["containers"][0]["env"]


def test_a_chart_renders_the_same_objects_every_time(fleet: FleetRepo, tmp_path: Path) -> None:
    first = objects_of(fleet, "canary", tmp_path / "one")
    assert objects_of(fleet, "canary", tmp_path / "two") == first
    hashes = [
        Compiler(GitSource(fleet.path)).desired("HEAD").cells["canary"].services["podinfo"].hash
        for _ in range(2)
    ]
    assert hashes[0] == hashes[1]


def test_validation_names_the_chart_template_of_a_custom_kind(fleet: FleetRepo) -> None:
    result = cellops("validate", fleet.path)
    assert "services/podinfo/chart/templates/servicemonitor.yaml: ServiceMonitor podinfo" in (
        result.stdout
    )


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "crds/widgets.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            "metadata: {name: widgets.example.com}\n",
            "services/podinfo/chart/crds/widgets.yaml: a chart's crds/ holds"
            " CustomResourceDefinitions, which are cluster-scoped",
        ),
        (
            "templates/token.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n"
            "stringData: {token: {{ randAlphaNum 16 | quote }}}\n",
            "services/podinfo/chart/templates/token.yaml: renders differently every time",
        ),
    ],
    ids=["crds", "random"],
)
def test_what_a_cell_cannot_hold_of_a_chart_is_refused(
    any_chart: FleetRepo, path: str, text: str, expected: str
) -> None:
    fleet = any_chart
    fleet.write(f"services/podinfo/chart/{path}", text)
    fleet.commit(f"podinfo's chart brings {path}")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert expected in result.stdout


def test_a_chart_that_does_not_render_says_where(any_chart: FleetRepo) -> None:
    fleet = any_chart
    fleet.write("services/podinfo/chart/templates/broken.yaml", "{{ .Values.nope.deeper }}\n")
    fleet.commit("a broken template")
    for args in (["validate", fleet.path], ["validate", "--path", fleet.path]):
        result = cellops(*args)
        assert result.returncode == 1
        assert "services/podinfo/chart/templates/broken.yaml:1: helm:" in result.stdout
        assert "nil pointer evaluating" in result.stdout


def test_a_local_chart_needs_its_folder(any_chart: FleetRepo) -> None:
    fleet = any_chart
    shutil.rmtree(fleet.path / "services/podinfo/chart")
    fleet.commit("the chart folder is gone")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "services/podinfo/chart/ does not exist: expected the chart there" in result.stdout


# -- OCI ------------------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry on a free port of 127.0.0.1, its storage in tmp_path."""
    with running_registry(tmp_path, auth=False) as running:
        yield running.host


def push_podinfo(host: str, scratch: Path, chart: Path = PODINFO_CHART) -> str:
    """podinfo's chart (or `chart`, named as it), packaged and pushed; its digest."""
    archive = helm.package(chart, destination=scratch)
    with helm.RegistryClient(plain_http=True) as client:
        client.push(archive, f"oci://{host}/charts")
        return str(client.resolve(f"oci://{host}/charts/podinfo:6.14.1")["digest"])


def from_registry(fleet: FleetRepo, host: str, digest: str) -> None:
    shutil.rmtree(fleet.path / "services/podinfo/chart")
    fleet.replace(
        "services/podinfo/service.yaml",
        "  chart:\n",
        f"  chart:\n    oci: oci://{host}/charts/podinfo\n    version: 6.14.1\n"
        f"    digest: {digest}\n",
    )
    fleet.commit("podinfo's chart from the registry")


def test_an_oci_chart_pinned_by_digest_is_pulled_once_and_rendered(
    fleet: FleetRepo, registry: str, tmp_path: Path
) -> None:
    digest = push_podinfo(registry, tmp_path)
    from_registry(fleet, registry, digest)
    built = tmp_path / "built"
    objects = podinfo(objects_of(fleet, "canary", built))
    assert ("Deployment", "podinfo-redis") in objects and ("Ingress", "podinfo") in objects
    source = objects[("Deployment", "podinfo")]["metadata"]["annotations"]["cellops.dev/from-chart"]
    assert source == f"oci://{registry}/charts/podinfo:6.14.1/templates/deployment.yaml"
    assert [p.name for p in (built / "oci").iterdir()] == [f"{digest[7:]}.tgz"]
    # validation renders it too (from its own cache: objects are judged by their template)
    result = cellops("validate", fleet.path)
    assert f"oci://{registry}/charts/podinfo:6.14.1/templates/" in result.stdout
    assert "cannot pull" not in result.stdout


def test_an_oci_chart_whose_version_was_pushed_again_is_refused(
    any_chart: FleetRepo, registry: str, tmp_path: Path
) -> None:
    fleet = any_chart
    push_podinfo(registry, tmp_path / "first", STAND_IN_CHART)
    pinned = "sha256:" + "0" * 64
    from_registry(fleet, registry, pinned)
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "podinfo:6.14.1 has digest sha256:" in result.stdout
    assert f"not the pinned {pinned}" in result.stdout
