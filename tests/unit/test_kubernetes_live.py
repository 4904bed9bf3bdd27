"""Kubernetes objects as sent against the objects a cluster holds (cellops.diff.live), and
the inventory of what each Kubernetes cell holds (SqliteStore), on the objects rendered for
a real cell of the Kubernetes example fleet."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cellops.diff.live import ObjectKey, drift, in_apply_order, key_of, quantity, rank_of, sent_hash
from cellops.render.kubernetes import REVISION, cell_objects
from cellops.store.migrations import MIGRATIONS
from cellops.store.records import InventoryItem
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo
from tests.unit.test_kubernetes_render import K8S_FLEET, rendered

Obj = dict[str, Any]
CONTAINERS = "spec.template.spec.containers"


@pytest.fixture(scope="module")
def eu1(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The objects of cell eu-1, in rendered order. Shared: tests copy before changing."""
    repo = FleetRepo(tmp_path_factory.mktemp("live") / "k8s", K8S_FLEET)
    repo.commit("kubernetes fleet")
    fleet, _ = rendered(repo)
    return cell_objects(fleet.cells["eu-1"], fleet.revision)


def find(objects: list[Obj], kind: str, name: str = "ledger") -> Obj:
    return copy.deepcopy(
        next(o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name))
    )


def as_live(sent: Obj) -> Obj:
    """`sent` as the API server returns it: defaults, status and its own metadata added."""
    live = copy.deepcopy(sent)
    live["metadata"] |= {"uid": "0d2c", "resourceVersion": "812", "generation": 3}
    annotations = live["metadata"].get("annotations") or {}
    live["metadata"]["annotations"] = {**annotations, "deployment.kubernetes.io/revision": "4"}
    live["status"] = {"replicas": 2, "readyReplicas": 2}
    if live["kind"] == "Deployment":
        live["spec"] |= {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10}
        pod = live["spec"]["template"]["spec"]
        pod |= {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}
        for container in pod["containers"]:
            container["terminationMessagePath"] = "/dev/termination-log"
            container["imagePullPolicy"] = "IfNotPresent"
    return live


def container(obj: Obj, name: str = "ledger") -> Obj:
    found: Obj = next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)
    return found


# -- identity --------------------------------------------------------------------------------
def test_object_keys_round_trip_through_their_text(eu1: list[Obj]) -> None:
    keys = [key_of(obj) for obj in eu1]
    assert len(set(keys)) == len(eu1)
    for key in keys:
        assert ObjectKey.parse(key.text) == key
    namespace, deployment = key_of(eu1[0]), key_of(find(eu1, "Deployment"))
    assert namespace == ObjectKey("v1", "Namespace", "", "cell-eu-1")
    assert namespace.text == "v1 Namespace - cell-eu-1"
    assert str(namespace) == "Namespace cell-eu-1"
    assert deployment.text == "apps/v1 Deployment cell-eu-1 ledger"
    assert str(deployment) == "Deployment cell-eu-1/ledger"
    assert ObjectKey.parse(deployment.text) == deployment


# -- apply order -----------------------------------------------------------------------------
def test_a_rendered_cell_is_applied_dependencies_first(eu1: list[Obj]) -> None:
    ordered = in_apply_order(eu1)
    assert ordered != eu1  # rendered per service; the order really changes
    assert sorted(map(key_of, ordered)) == sorted(map(key_of, eu1))
    kinds = [o["kind"] for o in ordered]

    def at(kind: str) -> list[int]:
        return [i for i, k in enumerate(kinds) if k == kind]

    assert kinds[0] == "Namespace"
    assert max(at("ResourceQuota")) < min(at("NetworkPolicy"))
    assert max(at("ServiceAccount")) < min(at("Deployment"))
    assert max(at("Service")) < min(at("Deployment"))
    assert max(at("Deployment")) < min(at("PodDisruptionBudget"))
    assert kinds[-2:] == ["PodDisruptionBudget", "PodDisruptionBudget"]


def test_equals_keep_their_order_and_unknown_kinds_sit_between(eu1: list[Obj]) -> None:
    monitor: Obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "ledger", "namespace": "cell-eu-1"},
    }
    ordered = in_apply_order([monitor, *reversed(eu1)])
    middle = [(o["kind"], o["metadata"]["name"]) for o in ordered if rank_of(o["kind"]) == 50]
    assert middle == [
        ("ServiceMonitor", "ledger"),
        ("Deployment", "payments"),
        ("Deployment", "ledger"),
    ]
    assert [o["metadata"]["name"] for o in ordered if o["kind"] == "NetworkPolicy"] == [
        "allow-dns",
        "allow-cell",
        "deny-egress",
        "deny-ingress",
    ]
    assert rank_of("Service") < rank_of("ServiceMonitor") == rank_of("Deployment")
    assert rank_of("Deployment") < rank_of("HorizontalPodAutoscaler")
    assert rank_of("HorizontalPodAutoscaler") < rank_of("PodDisruptionBudget")


# -- sent hash -------------------------------------------------------------------------------
def test_sent_hash_leaves_out_the_revision_label_only(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    before = copy.deepcopy(sent)
    other = copy.deepcopy(sent)
    other["metadata"]["labels"][REVISION] = "ffffffffffff"
    unlabelled = copy.deepcopy(sent)
    del unlabelled["metadata"]["labels"][REVISION]
    assert sent_hash(sent) == sent_hash(other) == sent_hash(unlabelled)
    assert sent == before  # the input keeps its revision label


CHANGES: dict[str, Callable[[Obj], None]] = {
    "label": lambda o: o["metadata"]["labels"].update({"app.kubernetes.io/name": "other"}),
    "annotation": lambda o: o["metadata"].update({"annotations": {"team": "payments"}}),
    "replicas": lambda o: o["spec"].update({"replicas": 3}),
    "image": lambda o: container(o).update({"image": "ledger:2"}),
    "service-hash": lambda o: o["metadata"]["annotations"].update({"cellops.dev/hash": "x"}),
    "pod-label": lambda o: o["spec"]["template"]["metadata"]["labels"].update({"x": "1"}),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_sent_hash_changes_with_anything_else(
    eu1: list[Obj], change: Callable[[Obj], None]
) -> None:
    sent = find(eu1, "Deployment")
    changed = copy.deepcopy(sent)
    change(changed)
    assert changed != sent
    assert sent_hash(changed) != sent_hash(sent)


# -- drift -----------------------------------------------------------------------------------
def test_what_the_server_adds_is_not_drift(eu1: list[Obj]) -> None:
    for sent in eu1:
        assert drift(sent, as_live(sent)) == [], key_of(sent)


def test_changed_fields_are_reported_as_dotted_paths(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    live = as_live(sent)
    live["spec"]["replicas"] = 5
    container(live)["image"] = "ledger:evil"
    live["metadata"]["labels"][REVISION] = "000000000000"  # alone, never drift
    assert drift(sent, live) == ["spec.replicas", f"{CONTAINERS}[ledger].image"]


def test_named_items_are_matched_by_name_whatever_their_order(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    sidecar = {**container(sent), "name": "proxy", "image": "envoy:1.30", "env": []}
    sent["spec"]["template"]["spec"]["containers"].append(sidecar)
    live = as_live(sent)
    live["spec"]["template"]["spec"]["containers"].reverse()
    assert drift(sent, live) == []
    container(live, "proxy")["image"] = "envoy:1.31"
    assert drift(sent, live) == [f"{CONTAINERS}[proxy].image"]
    live["spec"]["template"]["spec"]["containers"].pop(0)
    assert drift(sent, live) == [f"{CONTAINERS}[proxy]"]


def test_removed_items_and_missing_keys_are_drift(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    container(sent)["env"].append({"name": "MODE", "value": "strict"})
    live = as_live(sent)
    container(live)["env"] = [e for e in container(live)["env"] if e["name"] != "MODE"]
    del container(live)["securityContext"]["readOnlyRootFilesystem"]
    del live["spec"]["strategy"]
    assert drift(sent, live) == [
        "spec.strategy",
        f"{CONTAINERS}[ledger].env[MODE]",
        f"{CONTAINERS}[ledger].securityContext.readOnlyRootFilesystem",
    ]


def test_empty_values_the_server_drops_are_not_drift(eu1: list[Obj]) -> None:
    policy = find(eu1, "NetworkPolicy", "deny-ingress")
    assert policy["spec"]["podSelector"] == {}
    policy["spec"] |= {"egress": [], "ingress": None}
    live = as_live(policy)
    for field in ("podSelector", "egress", "ingress"):
        del live["spec"][field]
    assert drift(policy, live) == []
    live["spec"]["policyTypes"] = ["Ingress", "Egress"]  # a list of scalars: by position
    assert drift(policy, live) == ["spec.policyTypes"]
    del live["spec"]["policyTypes"]  # not empty: drift
    assert drift(policy, live) == ["spec.policyTypes"]


@pytest.mark.parametrize(
    ("mine", "theirs", "drifted"),
    [
        ("1000m", "1", False),
        ("1Gi", "1073741824", False),
        ("128Mi", "134217728", False),
        (2, "2", False),
        ("500m", "1", True),
        ("256Mi", "256M", True),
    ],
)
def test_quantities_compare_by_value(eu1: list[Obj], mine: Any, theirs: Any, drifted: bool) -> None:
    sent = find(eu1, "Deployment")
    container(sent)["resources"]["limits"]["cpu"] = mine
    live = as_live(sent)
    container(live)["resources"]["limits"]["cpu"] = theirs
    expected = [f"{CONTAINERS}[ledger].resources.limits.cpu"] if drifted else []
    assert drift(sent, live) == expected


def test_booleans_are_not_quantities(eu1: list[Obj]) -> None:
    sent = find(eu1, "ServiceAccount")
    sent["automountServiceAccountToken"] = True  # rendered False
    assert drift(sent, {**sent, "automountServiceAccountToken": "1"}) == [
        "automountServiceAccountToken"
    ]
    # True == 1 in Python, but a boolean is no number: the live 1 is drift
    assert drift(sent, {**sent, "automountServiceAccountToken": 1}) == [
        "automountServiceAccountToken"
    ]


def test_quantities_are_compared_by_value_only_where_they_are_quantities(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    container(sent)["env"] = [{"name": "VERSION", "value": "1.10"}]
    live = as_live(sent)
    container(live)["env"] = [{"name": "VERSION", "value": "1.1"}]  # a string, not 1.1 cpus
    assert drift(sent, live) == [f"{CONTAINERS}[ledger].env[VERSION].value"]


def test_a_removed_safeguard_is_drift_though_false(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    live = as_live(sent)
    del container(live)["securityContext"]["allowPrivilegeEscalation"]  # sent False
    assert drift(sent, live) == [f"{CONTAINERS}[ledger].securityContext.allowPrivilegeEscalation"]


def test_what_the_server_writes_its_own_way_can_be_ignored(eu1: list[Obj]) -> None:
    sent = find(eu1, "Deployment")
    live = as_live(sent)
    live["spec"]["replicas"] = 9
    assert drift(sent, live) == ["spec.replicas"]
    assert drift(sent, live, ignore={"spec.replicas"}) == []


# -- quantity --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", "0.5"),
        ("2k", "2000"),
        ("1Ki", "1024"),
        ("1.5Mi", "1572864"),
        ("1Gi", "1073741824"),
        ("3M", "3000000"),
        ("2G", "2000000000"),
        ("-1k", "-1000"),
        (2, "2"),
        (0.25, "0.25"),
        ("1e3", "1000"),  # Kubernetes' decimal exponent form
        ("5E-3", "0.005"),
    ],
)
def test_quantity_reads_every_form(text: str | float, value: str) -> None:
    assert quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", ".", "1mi", "Gi", "12e", "1 Gi", None, True])
def test_what_is_no_quantity_is_none(text: object) -> None:
    assert quantity(text) is None


# -- the inventory -----------------------------------------------------------------------------
CLUSTER = json.dumps({"kubeconfig": "~/.kube/config", "context": "eu-1"})


def item(obj: Obj, cluster: str = CLUSTER) -> InventoryItem:
    return InventoryItem(
        key_of(obj).text, rank_of(obj["kind"]), sent_hash(obj), json.dumps(obj), cluster
    )


def test_inventory_is_kept_in_apply_order_per_cell(tmp_path: Path, eu1: list[Obj]) -> None:
    store = SqliteStore(tmp_path / "state.db")
    assert store.schema_version == len(MIGRATIONS)
    items = [item(o) for o in eu1]
    for tracked in reversed(items):
        store.track("eu-1", tracked)
    store.track("us-1", item(eu1[0], cluster="{}"))
    expected = sorted(items, key=lambda i: (i.rank, i.key))
    assert expected != items
    assert store.inventory("eu-1") == expected
    assert store.inventory("us-1") == [item(eu1[0], cluster="{}")]
    assert store.inventory("eu-canary") == []
    store.close()
    reopened = SqliteStore(tmp_path / "state.db")
    assert reopened.schema_version == len(MIGRATIONS)
    assert reopened.inventory("eu-1") == expected
    assert reopened.inventory("us-1") == [item(eu1[0], cluster="{}")]
    reopened.close()


def test_tracking_a_key_again_updates_its_one_row(tmp_path: Path, eu1: list[Obj]) -> None:
    store = SqliteStore(tmp_path / "state.db")
    first = replace(item(find(eu1, "Deployment")), hash=None)
    store.track("eu-1", first)
    assert store.inventory("eu-1") == [first]
    assert store.inventory("eu-1")[0].hash is None  # in flight: tracked before it is sent
    sent = replace(first, hash="abc123", body='{"kind":"Deployment"}')
    store.track("eu-1", sent)
    assert store.inventory("eu-1") == [sent]
    # the same object in another cluster (the cell moved) is another row until pruned
    moved = replace(sent, cluster='{"context":"b"}')
    store.track("eu-1", moved)
    assert sorted(store.inventory("eu-1"), key=lambda i: i.cluster) == [moved, sent]
    store.untrack("eu-1", sent.key, sent.cluster)
    assert store.inventory("eu-1") == [moved]
    store.close()


def test_untrack_removes_only_that_cells_key(tmp_path: Path, eu1: list[Obj]) -> None:
    store = SqliteStore(tmp_path / "state.db")
    account, deployment = item(find(eu1, "ServiceAccount")), item(find(eu1, "Deployment"))
    for cell in ("eu-1", "us-1"):
        store.track(cell, account)
        store.track(cell, deployment)
    store.untrack("eu-1", deployment.key, CLUSTER)
    store.untrack("eu-1", "v1 ConfigMap cell-eu-1 nothing", CLUSTER)  # not tracked: no-op
    assert store.inventory("eu-1") == [account]
    assert store.inventory("us-1") == [account, deployment]
    store.close()
