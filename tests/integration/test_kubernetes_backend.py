"""The Kubernetes backend on the wire: the example Kubernetes fleet applied to two API
servers (kmock, one per kubeconfig context) through the official client. Asserts what is
sent (paths, content type, field manager, force), what is not sent (unchanged objects),
prune, drift, health, and how failures are reported."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import kmock
import pytest

from cellops.backends.kubernetes.backend import KubernetesCells
from cellops.backends.kubernetes.manifests import ManifestCache
from cellops.health import Health
from cellops.model.errors import BackendError
from cellops.pipeline import Compiler
from cellops.render import DesiredCell
from cellops.source.git import GitSource, export_tree
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo
from tests.kubeserver import APPLY, KubeServer, write_kubeconfig

ROOT = Path(__file__).parents[2]
PODINFO = ROOT.parent / "shared" / "realworld" / "podinfo"
CANARY_NS = "cell-eu-canary"


@dataclass
class World:
    repo: FleetRepo
    eu: KubeServer
    us: KubeServer
    store: SqliteStore
    backend: KubernetesCells
    force: list[bool]

    def cell(self, name: str, rev: str = "HEAD") -> DesiredCell:
        return Compiler(GitSource(self.repo.path)).desired(rev).cells[name]

    def apply(self, name: str) -> str:
        cell = self.cell(name)
        return self.backend.apply(cell, cell.services)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    repo = FleetRepo(tmp_path / "fleet", ROOT / "examples" / "k8s-fleet")
    repo.commit("kubernetes fleet")
    with KubeServer() as eu, KubeServer() as us:
        config = tmp_path / "kubeconfig"
        write_kubeconfig(config, {"eks-eu-west-1": eu.url, "eks-us-east-1": us.url})
        monkeypatch.setenv("KUBECONFIG", str(config))
        store = SqliteStore(tmp_path / "state" / "cellops.db")
        built = ManifestCache(tmp_path / "manifests", partial(export_tree, repo.path))
        force = [False]
        backend = KubernetesCells(store, built.objects, lambda: force[0])
        yield World(repo, eu, us, store, backend, force)
        backend.close()
        store.close()


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        time.sleep(0.05)


def edit(server: KubeServer, path: str, patch: dict[str, object]) -> None:
    """A change by hand, as `kubectl edit` would make it (a merge patch)."""
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(patch).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def patched(server: KubeServer) -> list[str]:
    return [s.path for s in server.sent("PATCH")]


# -- apply ----------------------------------------------------------------------------------
def test_first_apply_sends_every_object_by_server_side_apply_in_order(world: World) -> None:
    world.apply("eu-canary")
    sent = world.eu.sent("PATCH")
    assert world.us.sent() == []  # the other context's cluster is left alone
    assert {s.content_type for s in sent} == {APPLY}
    assert all(s.query == {"fieldManager": "cellops"} for s in sent)  # no force by default
    paths = [s.path for s in sent]
    assert paths[0] == f"/api/v1/namespaces/{CANARY_NS}"
    account = paths.index(f"/api/v1/namespaces/{CANARY_NS}/serviceaccounts/ledger")
    deployment = paths.index(f"/apis/apps/v1/namespaces/{CANARY_NS}/deployments/ledger")
    budget = paths.index(f"/apis/policy/v1/namespaces/{CANARY_NS}/poddisruptionbudgets/ledger")
    quota = paths.index(f"/api/v1/namespaces/{CANARY_NS}/resourcequotas/cell-capacity")
    assert quota < account < deployment < budget
    # the body is the rendered object, labelled as cellops' own
    body = next(s.body for s in sent if s.path.endswith("/deployments/payments"))
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cellops"
    assert body["metadata"]["namespace"] == CANARY_NS
    items = world.store.inventory("eu-canary")
    assert len(items) == len(sent) and all(i.hash is not None for i in items)


def test_force_conflicts_is_the_fleets_choice(world: World) -> None:
    world.force[0] = True
    world.apply("us-1")
    sent = world.us.sent("PATCH")
    assert sent and all(s.query == {"fieldManager": "cellops", "force": "true"} for s in sent)


def test_nothing_unchanged_is_sent_again(world: World) -> None:
    first = world.apply("eu-1")
    world.eu.clear()
    world.repo.write("README.md", "a commit that changes no cell\n")
    world.repo.commit("docs")
    assert world.apply("eu-1") == first
    assert patched(world.eu) == []


def test_a_one_service_change_sends_only_what_changed(world: World) -> None:
    world.apply("eu-1")
    world.eu.clear()
    world.repo.replace("services/ledger/service.yaml", "SERVICE_NAME: ledger", "SERVICE_NAME: l2")
    world.repo.commit("ledger env")
    world.apply("eu-1")
    assert patched(world.eu) == ["/apis/apps/v1/namespaces/cell-eu-1/deployments/ledger"]


# -- prune ----------------------------------------------------------------------------------
def remove_payments(world: World) -> None:
    world.repo.remove("services/payments")
    world.repo.commit("payments retired")


def test_a_removed_service_is_pruned_in_reverse_order(world: World) -> None:
    world.apply("eu-canary")
    remove_payments(world)
    world.eu.clear()
    world.apply("eu-canary")
    deleted = [s.path.rsplit(f"/namespaces/{CANARY_NS}/", 1)[1] for s in world.eu.sent("DELETE")]
    assert deleted == [
        "poddisruptionbudgets/payments",
        "deployments/payments",
        "services/payments",
        "serviceaccounts/payments",
    ]
    assert not any("payments" in i.key for i in world.store.inventory("eu-canary"))
    assert world.eu.call(lambda c: c.live("apps/v1", "deployments", CANARY_NS, "payments")) is None
    assert world.eu.call(lambda c: c.live("apps/v1", "deployments", CANARY_NS, "ledger"))


def test_an_object_whose_delete_fails_stays_in_the_inventory(world: World) -> None:
    world.apply("eu-canary")
    remove_payments(world)
    world.eu.cluster.refuse.append(("DELETE", "/deployments/payments$", 403))
    with pytest.raises(
        BackendError, match="cannot delete Deployment cell-eu-canary/payments"
    ) as caught:
        world.apply("eu-canary")
    assert not caught.value.transient  # 403: waiting will not help
    keys = [i.key for i in world.store.inventory("eu-canary") if "payments" in i.key]
    assert keys == [f"apps/v1 Deployment {CANARY_NS} payments"]  # the others went
    world.apply("eu-canary")  # the next apply tries again
    assert not any("payments" in i.key for i in world.store.inventory("eu-canary"))
    assert world.eu.call(lambda c: c.live("apps/v1", "deployments", CANARY_NS, "payments")) is None


def test_an_object_someone_else_took_over_is_not_deleted(world: World) -> None:
    world.apply("eu-canary")
    service = f"/api/v1/namespaces/{CANARY_NS}/services/payments"
    edit(world.eu, service, {"metadata": {"labels": {"app.kubernetes.io/managed-by": "helm"}}})
    remove_payments(world)
    world.eu.clear()
    world.apply("eu-canary")
    assert service not in [s.path for s in world.eu.sent("DELETE")]
    assert world.eu.call(lambda c: c.live("v1", "services", CANARY_NS, "payments")) is not None
    assert not any("payments" in i.key for i in world.store.inventory("eu-canary"))


def test_deleting_a_cell_removes_everything_the_namespace_last(world: World) -> None:
    world.apply("us-1")
    world.us.clear()
    world.backend.delete("us-1")
    deleted = [s.path for s in world.us.sent("DELETE")]
    assert len(deleted) == 15 and deleted[-1] == "/api/v1/namespaces/cell-us-1"
    assert world.store.inventory("us-1") == []
    assert "cell-us-1" not in world.us.cluster.namespaces


def test_a_cell_moved_to_another_cluster_is_created_there_then_pruned_here(
    world: World,
) -> None:
    world.apply("eu-1")
    world.repo.replace("cells/eu-1.yaml", "context: eks-eu-west-1", "context: eks-us-east-1")
    world.repo.commit("eu-1 moves to the other cluster")
    world.eu.clear()
    world.apply("eu-1")
    assert len(patched(world.us)) == 15  # everything, in its new cluster
    deleted = [s.path for s in world.eu.sent("DELETE")]
    assert len(deleted) == 15 and deleted[-1] == "/api/v1/namespaces/cell-eu-1"
    assert "cell-eu-1" not in world.eu.cluster.namespaces
    clusters = {json.loads(i.cluster)["server"] for i in world.store.inventory("eu-1")}
    assert clusters == {world.us.url}


# -- errors ---------------------------------------------------------------------------------
def test_transient_errors_are_retried(world: World) -> None:
    world.eu.cluster.refuse.append(("PATCH", "/deployments/ledger$", 503))
    world.apply("eu-1")
    attempts = [p for p in patched(world.eu) if p.endswith("/deployments/ledger")]
    assert len(attempts) == 2


def test_a_refused_object_is_reported_at_once_and_stays_tracked(world: World) -> None:
    world.eu.cluster.refuse.append(("PATCH", "/deployments/ledger$", 422))
    with pytest.raises(BackendError, match="Deployment cell-eu-1/ledger: 422") as caught:
        world.apply("eu-1")
    assert not caught.value.transient
    assert len([p for p in patched(world.eu) if p.endswith("/deployments/ledger")]) == 1
    item = next(
        i for i in world.store.inventory("eu-1") if i.key.endswith("Deployment cell-eu-1 ledger")
    )
    assert item.hash == "pending:"  # tracked before it was sent: never orphaned
    seen = world.backend.observe("eu-1")
    assert "Deployment cell-eu-1/ledger: apply did not finish" in seen.drifted


def test_an_unreachable_cluster_is_reported_not_raised(world: World) -> None:
    world.apply("eu-1")
    world.eu.__exit__()  # the API server goes away
    backend = KubernetesCells(world.store, lambda service, tree: [])  # the controller restarts
    seen = backend.observe("eu-1")
    assert not seen.reachable and "cannot reach the API server at " + world.eu.url in seen.reason
    world.repo.replace("services/ledger/service.yaml", "SERVICE_NAME: ledger", "SERVICE_NAME: l2")
    world.repo.commit("ledger env")  # something to send
    cell = world.cell("eu-1")
    started = time.monotonic()
    with pytest.raises(BackendError, match="cannot reach the API server") as caught:
        backend.apply(cell, cell.services)
    assert caught.value.transient
    assert time.monotonic() - started < 1  # the cluster is known down: no waiting on it
    assert world.us.sent() == []


def test_a_missing_kubeconfig_is_a_clear_error(world: World) -> None:
    world.repo.replace(
        "cells/eu-1.yaml",
        "context: eks-eu-west-1",
        "context: eks-eu-west-1\n    kubeconfig: /nowhere/config",
    )
    world.repo.commit("a kubeconfig that is not there")
    with pytest.raises(BackendError, match="/nowhere/config"):
        world.apply("eu-1")


# -- observe: health and drift --------------------------------------------------------------
def test_health_follows_the_deployment_rollout(world: World) -> None:
    cell = world.cell("eu-canary")
    world.backend.apply(cell, cell.services)
    assert world.backend.observe("eu-canary").services["ledger"].health is Health.PROGRESSING
    until(
        lambda: all(
            world.backend.observe("eu-canary").healthy_at(n, s.hash)
            for n, s in cell.services.items()
        )
    )
    seen = world.backend.observe("eu-canary")
    assert seen.reachable and seen.drifted == () and seen.desired == seen.applied
    assert seen.services["payments"].ready == seen.services["payments"].desired == 3


def test_a_rollout_past_its_deadline_is_degraded(world: World) -> None:
    cell = world.cell("eu-canary")
    image = cell.services["ledger"].spec.image
    assert image is not None
    world.eu.cluster.failing.add(image)
    world.backend.apply(cell, cell.services)
    until(lambda: world.backend.observe("eu-canary").services["ledger"].health is Health.DEGRADED)
    ledger = world.backend.observe("eu-canary").services["ledger"]
    assert "progress deadline exceeded" in ledger.reason
    assert not world.backend.observe("eu-canary").healthy_at("ledger", cell.services["ledger"].hash)


def test_drift_is_found_and_an_apply_repairs_only_it(world: World) -> None:
    document = world.apply("eu-1")
    edit(
        world.eu, "/apis/apps/v1/namespaces/cell-eu-1/deployments/ledger", {"spec": {"replicas": 5}}
    )
    world.eu.call(lambda c: c.namespaces.get("cell-eu-1"))  # the edit is in
    seen = world.backend.observe("eu-1")
    assert seen.desired != document
    assert seen.drifted == ("Deployment cell-eu-1/ledger: spec.replicas",)
    world.eu.clear()
    assert world.apply("eu-1") == document
    assert patched(world.eu) == ["/apis/apps/v1/namespaces/cell-eu-1/deployments/ledger"]
    live = world.eu.call(lambda c: c.live("apps/v1", "deployments", "cell-eu-1", "ledger"))
    assert live["spec"]["replicas"] == 2
    assert world.backend.observe("eu-1").desired == document


def test_an_object_deleted_by_hand_is_drift(world: World) -> None:
    world.apply("eu-1")
    world.eu.call(
        lambda c: c.objects[
            next(k for k in c.objects if k[2] == "ledger" and k[0].plural == "services")
        ].delete()
    )
    seen = world.backend.observe("eu-1")
    assert seen.drifted == ("Service cell-eu-1/ledger: deleted",)
    world.apply("eu-1")
    assert world.eu.call(lambda c: c.live("v1", "services", "cell-eu-1", "ledger")) is not None


# -- a service's own manifests ----------------------------------------------------------------
@pytest.mark.skipif(not PODINFO.is_dir(), reason="shared/realworld is not beside")
def test_podinfo_manifests_are_applied_into_the_cell(world: World) -> None:
    shutil.copytree(PODINFO / "backend", world.repo.path / "services/payments/manifests")
    world.repo.commit("payments brings podinfo's backend")
    world.apply("us-1")
    paths = patched(world.us)
    assert "/apis/apps/v1/namespaces/cell-us-1/deployments/backend" in paths
    assert "/apis/autoscaling/v2/namespaces/cell-us-1/horizontalpodautoscalers/backend" in paths
    seen = world.backend.observe("us-1")
    assert "HorizontalPodAutoscaler" not in seen.services["payments"].reason


MONITOR = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: payments}
spec: {endpoints: [{port: http}]}
"""


def test_a_custom_resource_is_found_by_discovery_and_applied(world: World) -> None:
    world.us.cluster.resources["monitoring.coreos.com/v1/servicemonitors"] = kmock.ResourceInfo(
        kind="ServiceMonitor", namespaced=True
    )
    world.repo.write("services/payments/manifests/monitor.yaml", MONITOR)
    world.repo.commit("payments is scraped")
    world.apply("us-1")
    assert len(world.us.sent("GET", "^/apis/monitoring.coreos.com/v1$")) == 1  # once
    path = "/apis/monitoring.coreos.com/v1/namespaces/cell-us-1/servicemonitors/payments"
    assert path in patched(world.us)
    assert world.backend.observe("us-1").drifted == ()


def test_a_kind_the_server_does_not_serve_is_a_clear_error(world: World) -> None:
    world.repo.write("services/payments/manifests/monitor.yaml", MONITOR)
    world.repo.commit("payments is scraped, but the CRD is not installed")
    with pytest.raises(
        BackendError, match=r"no resource ServiceMonitor in monitoring\.coreos\.com"
    ):
        world.apply("us-1")


def test_an_object_another_manager_made_is_not_taken_over_unless_the_fleet_says(
    world: World,
) -> None:
    world.apply("eu-1")
    ledger = next(
        i for i in world.store.inventory("eu-1") if i.key.endswith("Deployment cell-eu-1 ledger")
    )
    world.store.untrack("eu-1", ledger.key, ledger.cluster)  # as if another tool had made it
    theirs = {"metadata": {"labels": {"cellops.dev/revision": None}}, "spec": {"replicas": 4}}
    edit(world.eu, "/apis/apps/v1/namespaces/cell-eu-1/deployments/ledger", theirs)
    with pytest.raises(BackendError, match=r"409 Conflict.*forceConflicts") as caught:
        world.apply("eu-1")
    assert not caught.value.transient
    world.force[0] = True  # the fleet's choice: take it over
    world.apply("eu-1")
    live = world.eu.call(lambda c: c.live("apps/v1", "deployments", "cell-eu-1", "ledger"))
    assert live["spec"]["replicas"] == 2
    taken = next(i for i in world.store.inventory("eu-1") if i.key == ledger.key)
    assert taken.origin == "adopted"  # as it was found: 4 replicas
    assert json.loads(taken.found or "{}")["spec"]["replicas"] == 4


def test_a_namespace_that_is_someone_elses_is_not_taken(world: World) -> None:
    world.eu.cluster.namespaces["cell-eu-1"] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "cell-eu-1", "labels": {"team": "payments"}},
    }
    with pytest.raises(BackendError, match="Namespace cell-eu-1 already exists and is not"):
        world.apply("eu-1")
    assert patched(world.eu) == []
    assert world.store.inventory("eu-1") == []


def test_a_capacity_change_reaches_the_cluster_without_restarting_pods(world: World) -> None:
    before = world.cell("eu-1")
    world.apply("eu-1")
    generation = world.eu.call(
        lambda c: c.live("apps/v1", "deployments", "cell-eu-1", "ledger")["metadata"]["generation"]
    )
    world.repo.replace("cells/eu-1.yaml", 'cpu: "8"', 'cpu: "4"')
    world.repo.commit("eu-1 gets half the cpu")
    after = world.cell("eu-1")
    # the services' hashes change, so the commit is planned for the cell...
    assert before.services["ledger"].hash != after.services["ledger"].hash
    world.eu.clear()
    world.apply("eu-1")
    sent = patched(world.eu)
    assert "/api/v1/namespaces/cell-eu-1/resourcequotas/cell-capacity" in sent
    assert "/apis/apps/v1/namespaces/cell-eu-1/deployments/ledger" in sent
    live = world.eu.call(lambda c: c.live("apps/v1", "deployments", "cell-eu-1", "ledger"))
    # ...and the Deployment carries the new version, with its pod template unchanged
    assert live["metadata"]["generation"] == generation
    assert live["metadata"]["annotations"]["cellops.dev/hash"] == after.services["ledger"].hash
    quota = world.eu.call(lambda c: c.live("v1", "resourcequotas", "cell-eu-1", "cell-capacity"))
    assert quota["spec"]["hard"]["requests.cpu"] == "4"


def test_another_name_for_the_same_cluster_moves_nothing(world: World, tmp_path: Path) -> None:
    world.apply("eu-1")
    contexts = {"eks-eu-west-1": world.eu.url, "eks-us-east-1": world.us.url, "eu": world.eu.url}
    write_kubeconfig(tmp_path / "kubeconfig", contexts)
    world.repo.replace("cells/eu-1.yaml", "context: eks-eu-west-1", "context: eu")
    world.repo.commit("eu-1 names its cluster by a shorter context")
    world.eu.clear()
    world.apply("eu-1")
    assert world.eu.sent("DELETE") == []
    assert "cell-eu-1" in world.eu.cluster.namespaces
    assert {json.loads(i.cluster)["context"] for i in world.store.inventory("eu-1")} == {"eu"}
    # still cellops' own, not adopted from itself: found where the other name had put them
    assert {i.origin for i in world.store.inventory("eu-1")} == {"created"}


def test_a_current_context_that_now_points_elsewhere_is_refused(
    world: World, tmp_path: Path
) -> None:
    world.repo.replace("cells/eu-1.yaml", "    context: eks-eu-west-1\n", "")
    world.repo.commit("eu-1 uses the current context")
    world.apply("eu-1")  # current: eks-eu-west-1
    contexts = {"eks-us-east-1": world.us.url, "eks-eu-west-1": world.eu.url}
    write_kubeconfig(tmp_path / "kubeconfig", contexts)  # someone ran use-context
    restarted = KubernetesCells(world.store, lambda service, tree: [])
    cell = world.cell("eu-1")
    with pytest.raises(BackendError, match=r"now points at .* but the cell's objects are on"):
        restarted.apply(cell, cell.services)
    assert world.us.sent("PATCH") == [] and world.eu.sent("DELETE") == []
    seen = restarted.observe("eu-1")
    assert not seen.reachable and "now points at" in seen.reason


def test_a_cell_can_leave_a_cluster_that_is_down(world: World) -> None:
    world.apply("eu-1")
    world.eu.__exit__()  # the reason to move
    world.repo.replace("cells/eu-1.yaml", "context: eks-eu-west-1", "context: eks-us-east-1")
    world.repo.commit("eu-1 moves off the broken cluster")
    document = world.apply("eu-1")  # everything is created in us; eu's deletes fail
    assert len(patched(world.us)) == 15
    left = [i for i in world.store.inventory("eu-1") if i.hash and i.hash.startswith("left:")]
    assert len(left) == 15  # still listed: never orphaned, tried again at every apply
    assert {json.loads(i.cluster)["server"] for i in left} == {world.eu.url}
    seen = world.backend.observe("eu-1")
    assert seen.reachable and seen.desired == document and seen.drifted == ()


def test_an_autoscaled_service_leaves_replicas_to_its_autoscaler(world: World) -> None:
    world.repo.write(
        "services/payments/manifests/hpa.yaml",
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: payments}\n"
        "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: payments}\n"
        "  minReplicas: 2\n  maxReplicas: 6\n",
    )
    world.repo.commit("payments scales itself")
    world.apply("eu-1")
    sent = next(s.body for s in world.eu.sent("PATCH", "/deployments/payments$"))
    assert "replicas" not in sent["spec"]
    path = "/apis/apps/v1/namespaces/cell-eu-1/deployments/payments"
    edit(world.eu, path, {"spec": {"replicas": 5}})  # as the autoscaler would
    assert world.backend.observe("eu-1").drifted == ()  # not drift: the autoscaler's field


def test_a_read_serves_the_gate_for_a_second_unless_cellops_changed_the_cell(
    world: World,
) -> None:
    world.apply("eu-1")
    world.backend.observe("eu-1")
    world.eu.clear()
    for _ in range(10):  # the controller's ticks within one second
        world.backend.observe("eu-1")
    assert world.eu.sent("GET") == []
    world.repo.replace("services/ledger/service.yaml", "SERVICE_NAME: ledger", "SERVICE_NAME: l2")
    world.repo.commit("ledger env")
    world.apply("eu-1")
    world.backend.observe("eu-1")  # changed by cellops: read again at once
    assert world.eu.sent("GET")
