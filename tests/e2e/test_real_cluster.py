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
"""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from cellops.backends.kubernetes.backend import KubernetesCells
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
