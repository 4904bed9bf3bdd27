"""Taking over what another tool applied (Argo CD, Flux, kubectl), on the wire: the
example Kubernetes fleet applied to kmock where some of its objects already exist.

cellops records what it adopted as it was found, apart from what it created; prune never
deletes an adopted object unless it is annotated `cellops.dev/prune: "true"`: it releases
it (labels and annotations as found); a rollback past the takeover restores it as found;
a takeover that was never good is handed back."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from cellops.backends.kubernetes.takeover import SERVER_SET
from cellops.render.kubernetes import CELL, MANAGED_BY
from cellops.store.records import ADOPTED, CREATED
from tests.integration import test_kubernetes_backend
from tests.integration.test_kubernetes_backend import World
from tests.kubeserver import KubeServer

world = test_kubernetes_backend.world  # the same fixture: the example fleet, two clusters

NS = "cell-eu-1"
ARGO = {"app.kubernetes.io/instance": "shop", "team": "payments"}
LAST_APPLIED = {"kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Service"}'}


def create(server: KubeServer, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as another tool made it: POSTed, with what a server would have added."""
    made = json.loads(json.dumps(obj))
    made["metadata"].update(
        uid="0b8e-found",
        resourceVersion="17",
        creationTimestamp="2026-01-02T03:04:05Z",
        managedFields=[{"manager": "argocd-controller", "operation": "Update"}],
    )
    request = urllib.request.Request(
        server.url + collection,
        data=json.dumps(made).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 201)
    return obj


def namespace(server: KubeServer, cell: str, name: str = NS) -> dict[str, Any]:
    """The namespace, handed over to `cell` with the labels."""
    labels = {MANAGED_BY: "cellops", CELL: cell, "team": "payments"}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    return create(server, "/api/v1/namespaces", body)


def service(server: KubeServer, name: str, port: int, ns: str = NS) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": ARGO, "annotations": LAST_APPLIED},
        "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": port}]},
    }
    return create(server, f"/api/v1/namespaces/{ns}/services", body)


def config_map(server: KubeServer, name: str, data: dict[str, str], ns: str = NS) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": ARGO},
        "data": data,
    }
    return create(server, f"/api/v1/namespaces/{ns}/configmaps", body)


def as_found(live: dict[str, Any] | None) -> dict[str, Any]:
    """A live object without what the server writes, to compare with what was made."""
    assert live is not None
    body = {k: v for k, v in live.items() if k != "status"}
    body["metadata"] = {k: v for k, v in live["metadata"].items() if k not in SERVER_SET}
    return body


def live(world: World, api: str, plural: str, name: str, ns: str = NS) -> dict[str, Any] | None:
    found: dict[str, Any] | None = world.eu.call(lambda c: c.live(api, plural, ns, name))
    return found


def held(world: World, api: str, plural: str, name: str) -> dict[str, Any]:
    found = live(world, api, plural, name)
    assert found is not None, f"{plural}/{name} is not there"
    return found


def origins(world: World, cell: str) -> dict[str, str]:
    return {i.key: i.origin for i in world.store.inventory(cell)}


def deleted(world: World) -> list[str]:
    return [s.path for s in world.eu.sent("DELETE")]


def manifest(world: World, service_name: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    world.repo.write(f"services/{service_name}/manifests/{name}.yaml", json.dumps(obj))


def events(world: World, kind: str) -> list[str]:
    return [e.message for e in world.store.events(kind=kind)]


# -- adoption is recorded ---------------------------------------------------------------------
def test_what_was_there_is_recorded_as_adopted_as_it_was_found(world: World) -> None:
    made = namespace(world.eu, "eu-1")
    ledger = service(world.eu, "ledger", 80)
    world.force[0] = True
    world.apply("eu-1")
    items = {i.key: i for i in world.store.inventory("eu-1")}
    ns_item = items[f"v1 Namespace - {NS}"]
    assert ns_item.origin == ADOPTED
    assert json.loads(ns_item.found or "") == made  # no status, uid, resourceVersion...
    svc = items[f"v1 Service {NS} ledger"]
    assert svc.origin == ADOPTED and json.loads(svc.found or "") == ledger
    deployment = items[f"apps/v1 Deployment {NS} ledger"]
    assert deployment.origin == CREATED and deployment.found is None
    # cellops' own objects carry its labels now, the adopted ones too
    assert held(world, "v1", "services", "ledger")["metadata"]["labels"][CELL] == "eu-1"


def test_a_new_cell_is_created_with_no_read_per_object(world: World) -> None:
    world.apply("eu-1")
    assert [s.path for s in world.eu.sent("GET")] == [f"/api/v1/namespaces/{NS}"]
    assert set(origins(world, "eu-1").values()) == {CREATED}


# -- prune never deletes what cellops did not create --------------------------------------------
def test_an_adopted_object_that_leaves_the_fleet_is_released_not_deleted(world: World) -> None:
    namespace(world.eu, "eu-1")
    found = service(world.eu, "payments", 80)
    world.force[0] = True
    world.apply("eu-1")
    world.repo.remove("services/payments")
    world.repo.commit("payments retired")
    world.eu.clear()
    world.apply("eu-1")
    paths = deleted(world)
    assert f"/api/v1/namespaces/{NS}/services/payments" not in paths
    assert f"/apis/apps/v1/namespaces/{NS}/deployments/payments" in paths  # cellops made it
    now = as_found(live(world, "v1", "services", "payments"))
    assert now["metadata"]["labels"] == ARGO  # cellops' labels gone, the found ones back
    assert now["metadata"]["annotations"] == LAST_APPLIED
    assert now["spec"]["ports"][0]["port"] == 8081  # the rest as cellops last applied it
    assert now["spec"] != found["spec"]
    assert not any("payments" in key for key in origins(world, "eu-1"))
    assert events(world, "released") == [
        f"eu-1: Service {NS}/payments left the fleet; not deleted, since cellops did not"
        " create it: its labels and annotations as found, the rest as cellops last applied it"
    ]


def test_an_adopted_object_the_fleet_marks_for_prune_is_deleted(world: World) -> None:
    world.apply("eu-1")
    config_map(world.eu, "flags", {"checkout": "on"})
    wanted = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags", "annotations": {"cellops.dev/prune": "true"}},
        "data": {"checkout": "off"},
    }
    manifest(world, "ledger", wanted)
    world.repo.commit("ledger takes over its flags, and may prune them")
    world.apply("eu-1")
    assert origins(world, "eu-1")[f"v1 ConfigMap {NS} flags"] == ADOPTED
    world.repo.remove("services/ledger/manifests")
    world.repo.commit("the flags are gone")
    world.eu.clear()
    world.apply("eu-1")
    assert deleted(world) == [f"/api/v1/namespaces/{NS}/configmaps/flags"]
    assert live(world, "v1", "configmaps", "flags") is None


def test_removing_a_cell_releases_what_it_took_over_and_keeps_its_namespace(
    world: World,
) -> None:
    namespace(world.eu, "eu-1")
    service(world.eu, "ledger", 80)
    world.force[0] = True
    world.apply("eu-1")
    world.eu.clear()
    world.backend.delete("eu-1")
    paths = deleted(world)
    assert f"/api/v1/namespaces/{NS}" not in paths
    assert f"/api/v1/namespaces/{NS}/services/ledger" not in paths
    assert f"/apis/apps/v1/namespaces/{NS}/deployments/ledger" in paths
    assert NS in world.eu.cluster.namespaces
    assert world.eu.cluster.namespaces[NS]["metadata"]["labels"] == {
        MANAGED_BY: "cellops",
        CELL: "eu-1",
        "team": "payments",
    }
    assert as_found(live(world, "v1", "services", "ledger"))["metadata"]["labels"] == ARGO
    assert world.store.inventory("eu-1") == []


def test_a_namespace_cellops_made_is_kept_while_it_holds_what_it_did_not(world: World) -> None:
    world.apply("eu-1")
    config_map(world.eu, "flags", {"checkout": "on"})  # someone else's, in the cell's namespace
    wanted = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}}
    manifest(world, "ledger", {**wanted, "data": {"checkout": "off"}})
    world.repo.commit("ledger takes over its flags")
    world.apply("eu-1")
    world.eu.clear()
    world.backend.delete("eu-1")
    assert f"/api/v1/namespaces/{NS}" not in deleted(world)
    assert live(world, "v1", "configmaps", "flags") is not None
    assert events(world, "kept") == [
        f"eu-1: Namespace {NS} not deleted: it holds objects cellops did not create"
    ]


# -- rollback ---------------------------------------------------------------------------------
def test_a_rollback_past_a_takeover_restores_what_was_found(world: World) -> None:
    good = world.repo.repo.head.target
    world.apply("eu-1")
    found = config_map(world.eu, "flags", {"checkout": "on"})
    wanted = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}}
    manifest(world, "ledger", {**wanted, "data": {"checkout": "off", "new": "yes"}})
    world.repo.commit("ledger takes over its flags, and changes them")
    world.apply("eu-1")
    assert held(world, "v1", "configmaps", "flags")["data"] == {"checkout": "off", "new": "yes"}
    world.eu.clear()
    target = world.cell("eu-1", str(good))
    world.backend.roll_back(target, target.services)
    assert deleted(world) == []
    assert as_found(live(world, "v1", "configmaps", "flags")) == found
    assert [s.query for s in world.eu.sent("PATCH", "/configmaps/flags$")] == [
        {"fieldManager": "cellops"}
    ]
    assert events(world, "restored") == [
        f"eu-1: ConfigMap {NS}/flags: taken over, now restored as it was found"
    ]


def test_a_takeover_that_was_never_good_is_handed_back_as_found(world: World) -> None:
    namespace(world.eu, "eu-1")
    found = service(world.eu, "ledger", 80)
    world.force[0] = True
    world.apply("eu-1")
    assert world.backend.took_over("eu-1")
    created = [k for k, origin in origins(world, "eu-1").items() if origin == CREATED]
    world.eu.clear()
    done = world.backend.hand_back("eu-1")
    assert done == f"2 object(s) it took over restored as found, {len(created)} it created removed"
    paths = deleted(world)
    assert len(paths) == len(created)
    assert f"/api/v1/namespaces/{NS}" not in paths
    assert f"/api/v1/namespaces/{NS}/services/ledger" not in paths
    assert as_found(live(world, "v1", "services", "ledger")) == found
    assert world.store.inventory("eu-1") == []
    assert not world.backend.took_over("eu-1")


def test_what_cellops_made_is_still_its_own_after_its_store_was_lost(world: World) -> None:
    world.apply("eu-1")
    for item in world.store.inventory("eu-1"):  # the store is lost: a new, empty one
        world.store.untrack("eu-1", item.key, item.cluster)
    world.force[0] = True
    world.apply("eu-1")
    assert set(origins(world, "eu-1").values()) == {CREATED}
