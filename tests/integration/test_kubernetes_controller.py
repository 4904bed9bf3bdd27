"""Kubernetes cells through the same controller as local cells: `cellops up` as a real
process, over a fleet repo of Kubernetes cells in two clusters (two kmock API servers,
one per kubeconfig context), whose Deployment statuses a stand-in controller writes.

A good release goes canary first, then the rest; a release whose canary never becomes
available (ProgressDeadlineExceeded) is rolled back in the canary alone and stops there;
a change made by hand is put back and recorded as drift.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.store.records import RolloutState
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo
from tests.integration.controller_harness import CELLOPS, Fleet, ServiceDef, wait_for
from tests.integration.test_kubernetes_backend import edit
from tests.kubeserver import KubeServer, write_kubeconfig

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
REGISTRY = "registry.example.com/tests"
WEB = ServiceDef("web", 8080, probes=True)
COMPLETED, HALTED = RolloutState.COMPLETED, RolloutState.HALTED


def digest(version: str) -> str:
    return "sha256:" + hashlib.sha256(version.encode()).hexdigest()


class KubeFleet(Fleet):
    """The harness's fleet, with Kubernetes cells: a canary and one cell in context `eu`,
    one in context `us`. A release is a new image digest."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "k", [WEB], regions=("eu", "us"))

    def write_fleet(
        self, canary_bake: str, rest_bake: str, progress_deadline: str, max_concurrent: int = 1
    ) -> None:
        super().write_fleet(canary_bake, rest_bake, progress_deadline, max_concurrent)
        self.repo.replace(
            "cellops.yaml", "  defaults:", '  kubernetes:\n    version: "1.32"\n  defaults:'
        )
        for cell, labels in self.cells.items():
            context = "us" if labels["region"] == "us" else "eu"
            self.repo.replace(
                f"cells/{cell}.yaml",
                "  backend: local\n",
                f"  backend:\n    type: kubernetes\n    context: {context}\n",
            )

    def write_service(self, service: ServiceDef) -> None:
        self.repo.write(
            f"services/{service.name}/service.yaml",
            textwrap.dedent(
                f"""\
                apiVersion: cellops.dev/v1
                kind: Service
                metadata:
                  name: {service.name}
                spec:
                  image: {REGISTRY}/{service.name}@{digest("v1")}
                  replicas: 2
                  ports:
                    - {{name: http, port: {service.port}}}
                  probes:
                    readiness: {{http: {{path: /healthz, port: http}}}}
                """
            ),
        )

    def write_app(self, service: str, version: str, crash: bool = False) -> None:
        """Kubernetes cells run images, not app/ folders: a release changes the digest."""
        path = f"services/{service}/service.yaml"
        text = self.repo.read(path)
        current = text.split("@sha256:", 1)[1].split()[0]
        self.repo.write(path, text.replace("sha256:" + current, digest(version)))

    def image(self, service: str, version: str) -> str:
        return f"{REGISTRY}/{service}@{digest(version)}"


@pytest.fixture
def clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, KubeServer]]:
    with KubeServer() as eu, KubeServer() as us:
        config = write_kubeconfig(tmp_path / "kubeconfig", {"eu": eu.url, "us": us.url})
        monkeypatch.setenv("KUBECONFIG", str(config))  # the controller inherits it
        yield {"eu": eu, "us": us}


@pytest.fixture
def fleet(tmp_path: Path, clusters: dict[str, KubeServer]) -> Iterator[KubeFleet]:
    fleet = KubeFleet(tmp_path)
    yield fleet
    left = fleet.down()
    assert not left, f"processes outlived `cellops down`: {left}"


def images_sent(server: KubeServer, namespace: str) -> list[str]:
    """The image of every Deployment apply sent for `web` in `namespace`, in order."""
    return [
        s.body["spec"]["template"]["spec"]["containers"][0]["image"]
        for s in server.sent("PATCH", f"/namespaces/{namespace}/deployments/web$")
    ]


def test_releases_roll_out_canary_first_and_a_bad_one_stops_at_the_canary(
    fleet: KubeFleet, clusters: dict[str, KubeServer]
) -> None:
    eu, us = clusters["eu"], clusters["us"]
    fleet.start()
    fleet.wait_rollout(fleet.head, COMPLETED)
    for server, cell in ((eu, "k-canary"), (eu, "k-eu1"), (us, "k-us2")):
        live = server.call(lambda c, ns=f"cell-{cell}": c.live("apps/v1", "deployments", ns, "web"))
        assert live is not None and live["status"]["availableReplicas"] == 2
    assert eu.sent("PATCH", "/namespaces/cell-k-us2/") == []  # each cell in its own cluster

    # a good release: every cell, the canary before the others
    good = fleet.release("web", "v2")
    fleet.wait_rollout(good, COMPLETED)
    order = [s.path for s in eu.sent("PATCH", "/deployments/web$")]
    assert order.index("/apis/apps/v1/namespaces/cell-k-canary/deployments/web") < order.index(
        "/apis/apps/v1/namespaces/cell-k-eu1/deployments/web", 1
    )
    assert images_sent(us, "cell-k-us2")[-1] == fleet.image("web", "v2")

    # a bad release: its pods never become available
    for server in (eu, us):
        server.cluster.failing.add(fleet.image("web", "v3"))
    bad = fleet.release("web", "v3")
    halted = fleet.wait_rollout(bad, HALTED, timeout=60)
    assert "k-canary" in halted.reason
    assert images_sent(eu, "cell-k-canary")[-2:] == [
        fleet.image("web", "v3"),
        fleet.image("web", "v2"),  # rolled back, alone
    ]
    assert fleet.image("web", "v3") not in images_sent(eu, "cell-k-eu1")
    assert fleet.image("web", "v3") not in images_sent(us, "cell-k-us2")
    assert fleet.events(kind="rolled-back", cell="k-canary")
    wait_for(
        "the canary to recover on v2",
        lambda: fleet.events(kind="recovered", cell="k-canary"),
        timeout=30,
    )


def test_a_change_by_hand_is_put_back_and_recorded(
    fleet: KubeFleet, clusters: dict[str, KubeServer]
) -> None:
    us = clusters["us"]
    fleet.start(extra=("--resync", "0.5s"))
    fleet.wait_rollout(fleet.head, COMPLETED)
    mark = fleet.last_event_id()
    path = "/apis/apps/v1/namespaces/cell-k-us2/deployments/web"
    edit(us, path, {"spec": {"replicas": 7}})

    def restored() -> bool:
        live = us.call(lambda c: c.live("apps/v1", "deployments", "cell-k-us2", "web"))
        return bool(live and live["spec"]["replicas"] == 2)

    wait_for("the controller to put replicas back", restored, timeout=20)
    drift = wait_for("a drift event", lambda: fleet.events(after=mark, kind="drift"), timeout=10)
    assert "Deployment cell-k-us2/web: spec.replicas" in drift[0].message
    status = fleet.cli("status", fleet.repo.path, "--state-dir", fleet.state, "-o", "json")
    assert status.returncode == 0, status.stderr


def test_the_example_kubernetes_fleet_rolls_out(tmp_path: Path) -> None:
    """examples/k8s-fleet as it is (its bakes shortened), its two EKS contexts served by
    two kmock servers: every cell ends healthy, and `cellops status` reads the clusters."""
    repo = FleetRepo(tmp_path / "fleet", ROOT / "examples" / "k8s-fleet")
    repo.replace("cellops.yaml", "bake: 1m", "bake: 300ms")
    repo.replace("cellops.yaml", "bake: 30s", "bake: 200ms")
    head = repo.commit("the example, with short bakes")
    with KubeServer() as eu, KubeServer() as us:
        contexts = {"eks-eu-west-1": eu.url, "eks-us-east-1": us.url}
        config = write_kubeconfig(tmp_path / "kubeconfig", contexts)
        env = {**os.environ, "KUBECONFIG": str(config), "NO_COLOR": "1", "COLUMNS": "200"}
        state = tmp_path / "state"
        up = [CELLOPS, "up", str(repo.path), "--state-dir", str(state), "--no-view"]
        controller = subprocess.Popen([*up, "--poll", "0.2s"], env=env, stdout=subprocess.DEVNULL)
        try:

            def completed() -> bool:
                if not (state / "cellops.db").exists():
                    return False
                store = SqliteStore(state / "cellops.db")
                try:
                    rollouts = store.rollouts(limit=1)
                finally:
                    store.close()
                if rollouts and rollouts[0].state not in (RolloutState.RUNNING, COMPLETED):
                    raise AssertionError(
                        f"the rollout ended {rollouts[0].state}: {rollouts[0].reason}"
                    )
                return (
                    bool(rollouts)
                    and rollouts[0].revision == head
                    and rollouts[0].state is COMPLETED
                )

            wait_for("the example fleet's rollout", completed, timeout=60)
            status = subprocess.run(
                [CELLOPS, "status", str(repo.path), "--state-dir", str(state), "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert status.returncode == 0, status.stderr
            rows = json.loads(status.stdout)["services"]
            assert {(r["cell"], r["service"]) for r in rows} == {
                (c, s) for c in ("eu-canary", "eu-1", "us-1") for s in ("ledger", "payments")
            }
            assert {r["health"] for r in rows} == {"healthy"}
            assert us.sent("PATCH", "/namespaces/cell-us-1/deployments/payments$")
            assert not eu.sent("PATCH", "/namespaces/cell-us-1/")
        finally:
            controller.terminate()
            controller.wait(timeout=30)
