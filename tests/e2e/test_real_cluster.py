"""End to end on a real cluster (kind, EKS, ...): runs only when CELLOPS_E2E_KUBECONFIG
names a kubeconfig; skipped otherwise. See the README, "Kubernetes cells".

    CELLOPS_E2E_KUBECONFIG  kubeconfig file (required)
    CELLOPS_E2E_CONTEXT     context in it (default: its current context)
    CELLOPS_E2E_IMAGE       an image that serves HTTP on CELLOPS_E2E_PORT, runs as a
                            numeric non-root user and writes nothing to its root
                            filesystem (default: podinfo 6.7.1, port 9898)
    CELLOPS_E2E_TIMEOUT     seconds a rollout may take (default 300)

Two cells (a canary and one more) in namespaces of their own, cellops-e2e-<random>: the
first release rolls out and becomes available, a release whose image cannot be pulled is
rolled back in the canary alone, and both namespaces are deleted at the end.

Takeover (docs/migrating.md): an app another field manager made (a Deployment, a Service,
a ConfigMap) in a namespace handed over with the labels; a first rollout whose image
cannot be pulled hands it back as it was found, a good one takes it over, and removing
the service from the fleet releases it. Its namespace is deleted at the end.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from cellops.backends.kubernetes.backend import KubernetesCells
from cellops.render.kubernetes import CELL, MANAGED_BY
from cellops.store.records import RolloutState
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo
from tests.integration.controller_harness import CELLOPS, wait_for

KUBECONFIG = os.environ.get("CELLOPS_E2E_KUBECONFIG", "")
CONTEXT = os.environ.get("CELLOPS_E2E_CONTEXT", "")
IMAGE = os.environ.get("CELLOPS_E2E_IMAGE", "ghcr.io/stefanprodan/podinfo:6.7.1")
PORT = int(os.environ.get("CELLOPS_E2E_PORT", "9898"))
TIMEOUT = float(os.environ.get("CELLOPS_E2E_TIMEOUT", "300"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not KUBECONFIG, reason="CELLOPS_E2E_KUBECONFIG is not set"),
]


def fleet_files(repo: FleetRepo, tag: str, image: str) -> None:
    context = f"\n    context: {CONTEXT}" if CONTEXT else ""
    repo.write(
        "cellops.yaml",
        textwrap.dedent(
            """\
            apiVersion: cellops.dev/v1
            kind: Fleet
            metadata: {name: e2e}
            spec:
              rollout:
                waves:
                  - {name: canary, selector: {ring: canary}, bake: 10s}
                  - {name: rest, percent: 100, bake: 5s}
                failureBudget: 0
                onFailure: rollback
                progressDeadline: 4m
              imagePolicy: {requireDigest: false}
            """
        ),
    )
    for name, ring in (("canary", "canary"), ("main", "main")):
        repo.write(
            f"cells/{tag}-{name}.yaml",
            "apiVersion: cellops.dev/v1\nkind: Cell\n"
            f"metadata:\n  name: {tag}-{name}\n  labels: {{ring: {ring}}}\n"
            "spec:\n  backend:\n    type: kubernetes\n"
            f"    kubeconfig: {KUBECONFIG}{context}\n"
            f"    namespace: cellops-e2e-{tag}-{name}\n",
        )
    service = f"""\
        apiVersion: cellops.dev/v1
        kind: Service
        metadata: {{name: web}}
        spec:
          image: {image}
          replicas: 2
          ports: [{{name: http, port: {PORT}}}]
          probes:
            readiness: {{http: {{path: /readyz, port: http}}, periodSeconds: 2}}
          resources:
            requests: {{cpu: 10m, memory: 32Mi}}
            limits: {{cpu: 200m, memory: 128Mi}}
        """
    repo.write("services/web/service.yaml", textwrap.dedent(service))


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[FleetRepo, Path, str]]:
    tag = "e" + secrets.token_hex(3)
    repo = FleetRepo(tmp_path / "fleet", template=None)
    fleet_files(repo, tag, IMAGE)
    repo.commit("e2e fleet")
    state = tmp_path / "state"
    yield repo, state, tag
    store = SqliteStore(state / "cellops.db")
    backend = KubernetesCells(store, lambda service, tree: [])
    try:
        for cell in (f"{tag}-canary", f"{tag}-main"):
            backend.delete(cell)
    finally:
        backend.close()
        store.close()


def rollout_state(state: Path, revision: str) -> RolloutState | None:
    if not (state / "cellops.db").exists():
        return None
    store = SqliteStore(state / "cellops.db")
    try:
        found = [r for r in store.rollouts(limit=20) if r.revision == revision]
        return found[0].state if found else None
    finally:
        store.close()


def test_a_release_rolls_out_and_a_broken_one_stops_at_the_canary(
    fleet: tuple[FleetRepo, Path, str],
) -> None:
    repo, state, tag = fleet
    env = {**os.environ, "NO_COLOR": "1"}
    args = [CELLOPS, "up", str(repo.path), "--state-dir", str(state), "--no-view"]
    controller = subprocess.Popen([*args, "--poll", "1s"], env=env, stdout=subprocess.DEVNULL)
    try:
        first = repo.repo.head.target
        wait_for(
            "the first rollout",
            lambda: rollout_state(state, str(first)) is RolloutState.COMPLETED,
            TIMEOUT,
            interval=1,
        )
        broken = IMAGE.rsplit(":", 1)[0] + ":cellops-e2e-does-not-exist"
        fleet_files(repo, tag, broken)
        bad = repo.commit("an image that cannot be pulled")
        wait_for(
            "the broken release to halt",
            lambda: rollout_state(state, bad) is RolloutState.HALTED,
            TIMEOUT + 300,
            interval=1,
        )
        api = kubernetes.config.new_client_from_config(KUBECONFIG, CONTEXT or None)
        try:
            live = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(
                "web", f"cellops-e2e-{tag}-main"
            )
        finally:
            api.close()
        image = live.spec.template.spec.containers[0].image
        assert image == IMAGE  # the broken release never left the canary
    finally:
        controller.terminate()
        controller.wait(timeout=60)


# -- takeover ----------------------------------------------------------------------------------
PREVIOUS = "e2e-previous-tool"  # the field manager of the app before cellops


def found_app(image: str) -> list[dict[str, Any]]:
    """The app as the previous tool applied it."""
    labels = {"app": "web", "app.kubernetes.io/part-of": "e2e"}
    container = {
        "name": "web",
        "image": image,
        "ports": [{"containerPort": PORT}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": PORT}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "labels": labels},
            "data": {"greeting": "hello"},
        },
    ]


def takeover_fleet(repo: FleetRepo, cell: str, namespace: str, image: str | None) -> None:
    """One cell in the app's namespace; the service `app` brings the app's manifests with
    the web image `image` (None: the service is gone from the fleet)."""
    context = f", context: {CONTEXT}" if CONTEXT else ""
    fleet = textwrap.dedent(
        """\
        apiVersion: cellops.dev/v1
        kind: Fleet
        metadata: {name: e2e-takeover}
        spec:
          rollout:
            waves: [{name: canary, selector: {ring: canary}, bake: 10s}]
            onFailure: rollback
            progressDeadline: 2m
          imagePolicy: {requireDigest: false}
          kubernetes: {forceConflicts: true}
        """
    )
    repo.write("cellops.yaml", fleet)
    repo.write(
        f"cells/{cell}.yaml",
        "apiVersion: cellops.dev/v1\nkind: Cell\n"
        f"metadata: {{name: {cell}, labels: {{ring: canary}}}}\n"
        f"spec:\n  backend: {{type: kubernetes, kubeconfig: {KUBECONFIG}{context},"
        f" namespace: {namespace}}}\n",
    )
    if image is None:
        repo.remove("services/app")
        return
    repo.write("services/app/service.yaml", APP)
    repo.write("services/app/manifests/app.yaml", yaml.safe_dump_all(found_app(image)))


APP = textwrap.dedent(
    f"""\
        apiVersion: cellops.dev/v1
        kind: Service
        metadata: {{name: app}}
        spec:
          image: {IMAGE}
          replicas: 1
          ports: [{{name: http, port: {PORT}}}]
          resources:
            requests: {{cpu: 10m, memory: 32Mi}}
            limits: {{cpu: 200m, memory: 128Mi}}
        """
)


@pytest.fixture
def app_namespace() -> Iterator[tuple[str, str, kubernetes.client.ApiClient]]:
    """The app, made by another field manager, its namespace handed over to the cell."""
    tag = "t" + secrets.token_hex(3)
    cell, namespace = f"{tag}-takeover", f"cellops-e2e-{tag}-takeover"
    api = kubernetes.config.new_client_from_config(KUBECONFIG, CONTEXT or None)
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    hand_over = {MANAGED_BY: "cellops", CELL: cell}
    core.create_namespace(
        {"metadata": {"name": namespace, "labels": hand_over}}, field_manager=PREVIOUS
    )
    try:
        deployment, service, config = found_app(IMAGE)
        apps.create_namespaced_deployment(namespace, deployment, field_manager=PREVIOUS)
        core.create_namespaced_service(namespace, service, field_manager=PREVIOUS)
        core.create_namespaced_config_map(namespace, config, field_manager=PREVIOUS)
        yield cell, namespace, api
    finally:
        core.delete_namespace(namespace)  # cellops never deletes a namespace it adopted
        api.close()


def test_an_app_taken_over_goes_back_as_found_is_taken_over_and_released(
    tmp_path: Path, app_namespace: tuple[str, str, kubernetes.client.ApiClient]
) -> None:
    cell, namespace, api = app_namespace
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    repo = FleetRepo(tmp_path / "fleet", template=None)
    broken = IMAGE.rsplit(":", 1)[0] + ":cellops-e2e-does-not-exist"
    takeover_fleet(repo, cell, namespace, broken)
    first = repo.commit("the app moves in, with an image that cannot be pulled")
    state = tmp_path / "state"
    env = {**os.environ, "NO_COLOR": "1"}
    args = [CELLOPS, "up", str(repo.path), "--state-dir", str(state), "--no-view"]
    controller = subprocess.Popen([*args, "--poll", "1s"], env=env, stdout=subprocess.DEVNULL)

    def web() -> Any:
        return apps.read_namespaced_deployment("web", namespace)

    try:
        wait_for(
            "the first takeover to halt",
            lambda: rollout_state(state, first) is RolloutState.HALTED,
            TIMEOUT + 300,
            interval=1,
        )
        assert web().spec.template.spec.containers[0].image == IMAGE  # as found
        assert CELL not in (web().metadata.labels or {})
        assert core.read_namespaced_service("web", namespace).metadata.labels.get(CELL) is None
        takeover_fleet(repo, cell, namespace, IMAGE)
        good = repo.commit("the app moves in")
        wait_for(
            "the takeover",
            lambda: rollout_state(state, good) is RolloutState.COMPLETED,
            TIMEOUT,
            interval=1,
        )
        assert web().metadata.labels[CELL] == cell
        takeover_fleet(repo, cell, namespace, None)
        gone = repo.commit("the app leaves cellops")
        wait_for(
            "the release",
            lambda: rollout_state(state, gone) is RolloutState.COMPLETED,
            TIMEOUT,
            interval=1,
        )
        assert web().metadata.labels == {"app": "web", "app.kubernetes.io/part-of": "e2e"}
        assert core.read_namespaced_config_map("web-config", namespace).data == {
            "greeting": "hello"
        }
    finally:
        controller.terminate()
        controller.wait(timeout=60)
