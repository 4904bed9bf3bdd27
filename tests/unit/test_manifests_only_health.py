"""A manifests-only service's health, version and pods, read from its own workloads: the
version stamped on all of them once each is done rolling out, their pods summed."""

from __future__ import annotations

import json
from typing import Any

from cellops.backends.kubernetes.observation import service_observations
from cellops.diff.live import key_of
from cellops.health import Health
from cellops.render.kubernetes import FROM_MANIFESTS, SERVICE
from cellops.render.own import HASH, stamp
from cellops.store.records import InventoryItem

CLUSTER = "{}"


def workload(kind: str, name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "cell-a",
            "labels": {SERVICE: "shop"},
            "annotations": {FROM_MANIFESTS: "true"},
        },
        "spec": {"replicas": replicas},
    }


def live(sent: dict[str, Any], ready: int, *, done: bool = True) -> dict[str, Any]:
    obj = json.loads(json.dumps(sent))
    obj["metadata"]["generation"] = 2
    want = obj["spec"]["replicas"]
    names = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    obj["status"] = {"observedGeneration": 2 if done else 1, **dict.fromkeys(names, want)}
    obj["status"]["readyReplicas"] = ready
    return obj


def observe(sent: list[dict[str, Any]], seen: list[dict[str, Any]]) -> Any:
    items = [InventoryItem(key_of(o).text, 1, "h", json.dumps(o), CLUSTER) for o in sent]
    found = {(CLUSTER, key_of(o).text): o for o in seen}
    return service_observations(items, found)["shop"]


def test_stamp_marks_workloads_only_and_copies() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    objects = [workload("Deployment", "web"), config]
    stamped = stamp(objects, "v2")
    assert stamped[0]["metadata"]["annotations"][HASH] == "v2"
    assert "annotations" not in stamped[1]["metadata"]
    assert HASH not in objects[0]["metadata"]["annotations"]  # the input is left alone
    assert stamp([config], "v2")[0]["metadata"]["annotations"] == {HASH: "v2"}


def test_the_version_is_known_once_every_workload_runs_it() -> None:
    sent = stamp([workload("Deployment", "web"), workload("StatefulSet", "db", 1)], "v2")
    seen = observe(sent, [live(sent[0], 2), live(sent[1], 1)])
    assert (seen.hash, seen.ready, seen.desired, seen.health) == ("v2", 3, 3, Health.HEALTHY)
    rolling = observe(sent, [live(sent[0], 2), live(sent[1], 0, done=False)])
    assert rolling.hash is None and rolling.health is Health.PROGRESSING
    assert observe(sent, [live(sent[0], 2)]).hash is None  # one workload is missing


def test_workloads_on_different_versions_are_no_version() -> None:
    sent = stamp([workload("Deployment", "web"), workload("Deployment", "api")], "v2")
    older = live(sent[1], 2)
    older["metadata"]["annotations"][HASH] = "v1"
    assert observe(sent, [live(sent[0], 2), older]).hash is None
