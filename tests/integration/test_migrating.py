"""docs/migrating.md, step by step, through the controller (its reconcile passes run in
this process) against two kmock clusters where another tool runs an app: a dozen objects
(Deployments and Services, a ConfigMap, RBAC, an Ingress) in namespace `shop`.

1. the old tool stops syncing (nothing to do here: nothing else writes);
2. the namespace is handed over with the labels; the fleet sets `forceConflicts`;
3. the first rollout's canary fails: nothing is deleted, the app is as it was found, the
   other cluster is never touched;
4. a good rollout: the app is taken over in both clusters, nothing deleted;
5. the service leaves the fleet: the app is released, not deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cellops.render.kubernetes import CELL, MANAGED_BY
from cellops.store.records import ADOPTED, RolloutState
from cellops.wiring import Wiring, wire
from tests.fleetrepo import FleetRepo
from tests.integration.test_kubernetes_backend import edit
from tests.integration.test_takeover import as_found, create
from tests.kubeserver import KubeServer, write_kubeconfig

pytestmark = pytest.mark.slow

NS = "shop"
REGISTRY = "registry.example.com/shop"
CELLS = {"shop-canary": ("eu", "canary"), "shop-us": ("us", "main")}
FLEET = """\
apiVersion: cellops.dev/v1
kind: Fleet
metadata: {name: shop}
spec:
  rollout:
    waves:
      - {name: canary, selector: {ring: canary}, bake: 200ms}
      - {name: rest, percent: 100, bake: 200ms}
    progressDeadline: 2m
    onFailure: rollback
  kubernetes:
    version: "1.32"
    forceConflicts: true
"""
SERVICE = f"""\
apiVersion: cellops.dev/v1
kind: Service
metadata: {{name: shop}}
spec:
  image: {REGISTRY}/gateway@sha256:{"1" * 64}
  replicas: 1
  ports: [{{name: http, port: 8080}}]
  resources:
    requests: {{cpu: 10m, memory: 32Mi}}
    limits: {{cpu: 100m, memory: 64Mi}}
"""
PARTS = ("frontend", "cart", "catalog", "checkout")


def image(part: str, version: str = "v1") -> str:
    return f"{REGISTRY}/{part}@sha256:{version.encode().hex().ljust(64, '0')}"


def app(checkout: str = "v1") -> list[dict[str, Any]]:
    """The app as its repository has it (no namespace: the tool sets it)."""
    objects: list[dict[str, Any]] = []
    for part in PARTS:
        labels = {"app": part, "app.kubernetes.io/part-of": "shop"}
        container = {
            "name": part,
            "image": image(part, checkout if part == "checkout" else "v1"),
            "ports": [{"containerPort": 8080}],
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"memory": "64Mi"},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        pod = {
            "serviceAccountName": "shop-app",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        }
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": part, "labels": labels},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": part}},
                    "template": {"metadata": {"labels": {"app": part}}, "spec": pod},
                },
            }
        )
        spec = {"selector": {"app": part}, "ports": [{"port": 80, "targetPort": 8080}]}
        objects.append(_obj("v1", "Service", part, spec=spec))
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    subject = {"kind": "ServiceAccount", "name": "shop-app", "namespace": NS}
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop-reader"}
    path = {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend"}}}
    path["backend"]["service"]["port"] = {"number": 80}
    return [
        *objects,
        _obj("v1", "ConfigMap", "shop-config", data={"currency": "EUR"}),
        _obj("v1", "ServiceAccount", "shop-app"),
        _obj("rbac.authorization.k8s.io/v1", "Role", "shop-reader", rules=[rule]),
        _obj(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "shop-reader",
            subjects=[subject],
            roleRef=role_ref,
        ),
        _obj(
            "networking.k8s.io/v1",
            "Ingress",
            "shop",
            spec={"rules": [{"host": "shop.example.com", "http": {"paths": [path]}}]},
        ),
    ]


def _obj(api: str, kind: str, name: str, **content: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "shop"}
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "labels": labels},
        **content,
    }


def collection(obj: dict[str, Any]) -> str:
    api, kind = obj["apiVersion"], obj["kind"]
    plural = {"Ingress": "ingresses", "RoleBinding": "rolebindings"}.get(kind, kind.lower() + "s")
    prefix = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    return f"{prefix}/namespaces/{NS}/{plural}"


@dataclass
class Migration:
    repo: FleetRepo
    clusters: dict[str, KubeServer]
    wiring: Wiring
    found: dict[str, list[dict[str, Any]]]  # cluster -> the app as the old tool left it

    def run_until(self, revision: str, state: RolloutState, timeout: float = 60) -> str:
        """Reconcile passes until the rollout of `revision` ends in `state`; its reason."""
        deadline = time.monotonic() + timeout
        while True:
            self.wiring.reconciler.reconcile(check_source=True)
            ended = [r for r in self.wiring.store.rollouts(limit=5) if r.revision == revision]
            if ended and ended[0].state is state:
                return ended[0].reason
            if ended and ended[0].state not in (RolloutState.RUNNING, state):
                raise AssertionError(f"the rollout ended {ended[0].state}: {ended[0].reason}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {state} rollout of {revision[:12]} within {timeout}s")
            time.sleep(0.05)

    def live(self, cluster: str, obj: dict[str, Any]) -> dict[str, Any]:
        path = collection(obj) + "/" + obj["metadata"]["name"]
        plural = path.split("/")[-2]
        api = obj["apiVersion"]
        found = self.clusters[cluster].call(lambda c: c.live(api, plural, NS, path.split("/")[-1]))
        assert found is not None, f"{path} is gone from {cluster}"
        return as_found(found)

    def app_paths(self, cluster: str) -> set[str]:
        return {collection(o) + "/" + o["metadata"]["name"] for o in self.found[cluster]}

    def deleted(self, cluster: str) -> list[str]:
        return [s.path for s in self.clusters[cluster].sent("DELETE")]


@pytest.fixture
def migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Migration]:
    with KubeServer() as eu, KubeServer() as us:
        clusters = {"eu": eu, "us": us}
        config = write_kubeconfig(tmp_path / "kubeconfig", {"eu": eu.url, "us": us.url})
        monkeypatch.setenv("KUBECONFIG", str(config))
        found: dict[str, list[dict[str, Any]]] = {}
        for cell, (cluster, _) in CELLS.items():  # the app, as the old tool runs it
            create(clusters[cluster], "/api/v1/namespaces", _obj("v1", "Namespace", NS))
            found[cluster] = [
                create(
                    clusters[cluster],
                    collection(o),
                    {**o, "metadata": {**o["metadata"], "namespace": NS}},
                )
                for o in app()
            ]
            for obj in found[cluster]:  # its later syncs own the fields: a plain apply conflicts
                path = collection(obj) + "/" + obj["metadata"]["name"]
                edit(clusters[cluster], path, {"metadata": {"labels": obj["metadata"]["labels"]}})
            # step 2: hand the namespace over
            edit(
                clusters[cluster],
                f"/api/v1/namespaces/{NS}",
                {"metadata": {"labels": {MANAGED_BY: "cellops", CELL: cell}}},
            )
        repo = FleetRepo(tmp_path / "fleet", template=None)
        repo.write("cellops.yaml", FLEET)
        for cell, (cluster, ring) in CELLS.items():
            repo.write(
                f"cells/{cell}.yaml",
                "apiVersion: cellops.dev/v1\nkind: Cell\n"
                f"metadata: {{name: {cell}, labels: {{ring: {ring}}}}}\n"
                f"spec:\n  backend: {{type: kubernetes, context: {cluster}, namespace: {NS}}}\n",
            )
        repo.write("services/shop/service.yaml", SERVICE)
        for server in clusters.values():
            server.clear()
        wiring = wire(repo.path, tmp_path / "state")
        try:
            yield Migration(repo, clusters, wiring, found)
        finally:
            wiring.close()


def write_app(repo: FleetRepo, checkout: str) -> None:
    repo.write("services/shop/manifests/app.yaml", yaml.safe_dump_all(app(checkout)))


def test_an_app_moves_in_fails_goes_back_as_found_moves_in_and_is_released(
    migration: Migration,
) -> None:
    repo, eu, us = migration.repo, migration.clusters["eu"], migration.clusters["us"]
    # step 3: the first rollout, with a checkout image that never becomes available
    eu.cluster.failing.add(image("checkout", "v2"))
    write_app(repo, checkout="v2")
    first = repo.commit("shop moves into cellops (with a broken checkout)")
    reason = migration.run_until(first, RolloutState.HALTED)
    assert "shop-canary failed in the canary wave" in reason
    # not one object of the app, nor the namespace: only what cellops had created
    assert not migration.app_paths("eu") & set(migration.deleted("eu"))
    assert f"/api/v1/namespaces/{NS}" not in migration.deleted("eu")
    assert f"/apis/apps/v1/namespaces/{NS}/deployments/shop" in migration.deleted("eu")
    for obj in migration.found["eu"]:
        assert migration.live("eu", obj) == obj  # as it was found
    assert us.sent("PATCH") == [] and us.sent("DELETE") == []
    handed = migration.wiring.store.events(kind="rolled-back")
    assert "handed back as it was before the takeover" in handed[-1].message
    assert migration.wiring.store.inventory("shop-canary") == []

    # step 4: a good rollout takes the app over, in both clusters
    write_app(repo, checkout="v1")
    good = repo.commit("shop moves into cellops")
    migration.run_until(good, RolloutState.COMPLETED)
    for cluster, cell in (("eu", "shop-canary"), ("us", "shop-us")):
        origins = {i.key: i.origin for i in migration.wiring.store.inventory(cell)}
        for obj in migration.found[cluster]:
            now = migration.live(cluster, obj)
            assert now["metadata"]["labels"][CELL] == cell
            key = f"{obj['apiVersion']} {obj['kind']} {NS} {obj['metadata']['name']}"
            assert origins[key] == ADOPTED
        assert not migration.app_paths(cluster) & set(migration.deleted(cluster))

    # step 5: the service leaves the fleet: released, not deleted
    for server in (eu, us):
        server.clear()
    repo.remove("services/shop")
    gone = repo.commit("shop leaves cellops")
    migration.run_until(gone, RolloutState.COMPLETED)
    for cluster in ("eu", "us"):
        deleted = migration.deleted(cluster)
        assert f"/apis/apps/v1/namespaces/{NS}/deployments/shop" in deleted  # cellops made it
        assert not migration.app_paths(cluster) & set(deleted)
        for obj in migration.found[cluster]:
            now = migration.live(cluster, obj)
            assert now["metadata"]["labels"] == obj["metadata"]["labels"]  # as found
    released = migration.wiring.store.events(kind="released")
    assert len(released) == 2 * len(app())


def test_a_rollback_to_a_state_before_part_of_the_takeover_restores_that_part(
    migration: Migration,
) -> None:
    """The app moves in part by part: checkout last, with a broken image. The rollback
    goes to the good state, which never held checkout: it is restored as found."""
    repo, eu = migration.repo, migration.clusters["eu"]
    checkout = [o for o in app() if o["metadata"]["name"] == "checkout"]
    rest = [o for o in app() if o["metadata"]["name"] != "checkout"]
    repo.write("services/shop/manifests/app.yaml", yaml.safe_dump_all(rest))
    good = repo.commit("shop moves into cellops, but checkout")
    migration.run_until(good, RolloutState.COMPLETED)
    eu.cluster.failing.add(image("checkout", "v2"))
    write_app(repo, checkout="v2")
    bad = repo.commit("checkout moves in too, with a broken image")
    eu.clear()
    migration.run_until(bad, RolloutState.HALTED)
    assert not migration.app_paths("eu") & set(migration.deleted("eu"))
    found = {o["kind"]: o for o in migration.found["eu"] if o["metadata"]["name"] == "checkout"}
    for obj in checkout:
        assert migration.live("eu", obj) == found[obj["kind"]]  # as found: not cellops'
    restored = [e.message for e in migration.wiring.store.events(kind="restored")]
    assert sorted(restored) == [
        f"shop-canary: Deployment {NS}/checkout: taken over, now restored as it was found",
        f"shop-canary: Service {NS}/checkout: taken over, now restored as it was found",
    ]
    cart = next(o for o in migration.found["eu"] if o["metadata"]["name"] == "cart")
    assert migration.live("eu", cart)["metadata"]["labels"][CELL] == "shop-canary"  # still held
