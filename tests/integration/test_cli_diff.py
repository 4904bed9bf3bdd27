"""`cellops diff`: what a cell runs against what the fleet says. A local cell by its
agent's status and the ledger (files as the agent and controller write them); a
Kubernetes cell by a server-side apply dry run against a live API server (kmock)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.backends.kubernetes.api import ClusterRef, KubeApi, connect
from cellops.cli.render import kubernetes_objects
from cellops.pipeline import Compiler
from cellops.procfs import start_time
from cellops.source.git import GitSource
from cellops.store.sqlite import SqliteStore
from tests.clirun import cellops
from tests.fleetrepo import FleetRepo
from tests.kubeserver import KubeServer, write_kubeconfig
from tests.ledgerkit import record_applied

ROOT = Path(__file__).parents[2]


@contextlib.contextmanager
def agent_running(repo: FleetRepo, state: Path, cell: str) -> Iterator[None]:
    """The state a controller and agent leave once `cell` runs the repo's HEAD, and a
    heartbeat kept fresh meanwhile as a live agent keeps it (this process stands in for
    the agent: alive, with its start time)."""
    desired = Compiler(GitSource(repo.path)).desired("HEAD").cells[cell]
    store = SqliteStore(state / "cellops.db")
    services = {}
    for name, service in desired.services.items():
        record_applied(store, cell, name, service)
        services[name] = {"hash": service.hash, "pods": [], "replicas": 1}
    store.close()
    folder = state / "cells" / cell
    folder.mkdir(parents=True)
    agent = {"pid": os.getpid(), "started": start_time(os.getpid())}
    (folder / "agent.pid").write_text(json.dumps(agent))
    stop = threading.Event()

    def beat() -> None:
        while True:
            status = {"heartbeat": time.time(), "services": services, "pid": os.getpid()}
            (folder / "status.json.tmp").write_text(json.dumps(status))
            (folder / "status.json.tmp").replace(folder / "status.json")
            if stop.wait(0.5):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_local_cell_in_sync_then_behind_a_commit(
    example_fleet: FleetRepo, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with agent_running(example_fleet, state, "eu-1"):
        _in_sync_then_behind(example_fleet, state)


def _in_sync_then_behind(example_fleet: FleetRepo, state: Path) -> None:
    where = (example_fleet.path, "--state-dir", state, "--cell", "eu-1")
    same = cellops("diff", *where)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "cell eu-1 (local" in same.stdout and "in sync" in same.stdout
    example_fleet.replace("cellops.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
    head = example_fleet.commit("debug logs")
    behind = cellops("diff", *where)
    assert behind.returncode == 1
    assert "payments: differs" in behind.stdout and f"(fleet {head[:12]})" in behind.stdout
    assert "-    LOG_LEVEL: info" in behind.stdout and "+    LOG_LEVEL: debug" in behind.stdout
    document = json.loads(cellops("diff", *where, "-o", "json").stdout)
    [cell] = document["cells"]
    assert {s["state"] for s in cell["services"]} == {"differs"} and not cell["in_sync"]


def test_a_local_cell_whose_agent_never_ran_is_not_in_sync(
    example_fleet: FleetRepo, tmp_path: Path
) -> None:
    result = cellops("diff", example_fleet.path, "--state-dir", tmp_path / "none", "-c", "us-1")
    assert result.returncode == 1
    assert "cell us-1 (local" in result.stdout and "cannot be read" in result.stdout


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeServer]:
    """One kmock server behind both of the example's EKS contexts."""
    with KubeServer() as server:
        contexts = {"eks-eu-west-1": server.url, "eks-us-east-1": server.url}
        config = write_kubeconfig(tmp_path / "kubeconfig", contexts)
        monkeypatch.setenv("KUBECONFIG", str(config))
        yield server


@pytest.mark.slow
def test_a_kubernetes_cell_is_compared_by_a_server_side_dry_run(
    tmp_path: Path, cluster: KubeServer
) -> None:
    repo = FleetRepo(tmp_path / "fleet", ROOT / "examples" / "k8s-fleet")
    head = repo.commit("the example")
    cell = Compiler(GitSource(repo.path)).desired("HEAD").cells["eu-1"]
    api = KubeApi(connect(ClusterRef(None, "eks-eu-west-1")), "kmock")
    for obj in kubernetes_objects(cell, head, repo.path, None):  # as the controller applies
        api.apply(obj, force=True)
    dry_runs = len(cluster.sent("PATCH"))
    where = (repo.path, "--cell", "eu-1", "--state-dir", tmp_path / "state")

    same = cellops("diff", *where)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "cell eu-1 (kubernetes cell-eu-1 in context eks-eu-west-1): in sync" in same.stdout
    sent = cluster.sent("PATCH")[dry_runs:]
    assert sent and all(s.query.get("dryRun") == "All" for s in sent)

    # someone scales by hand: the live object differs from what the fleet says
    api.merge(next(_deployment(cell, head, repo)), {"spec": {"replicas": 7}})
    drifted = cellops("diff", *where)
    assert drifted.returncode == 1
    assert "Deployment cell-eu-1/payments: differs" in drifted.stdout, drifted.stdout
    assert "-  replicas: 7" in drifted.stdout and "+  replicas: 3" in drifted.stdout
    assert "managedFields" not in drifted.stdout and "resourceVersion" not in drifted.stdout
    live = cluster.call(lambda c: c.live("apps/v1", "deployments", "cell-eu-1", "payments"))
    assert live["spec"]["replicas"] == 7  # the dry run changed nothing
    api.close()


def _deployment(cell: object, head: str, repo: FleetRepo) -> Iterator[object]:
    from cellops.diff.live import key_of

    for obj in kubernetes_objects(cell, head, repo.path, None):  # type: ignore[arg-type]
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "payments":
            yield key_of(obj)
