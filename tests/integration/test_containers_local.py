"""Containers in local cells, for real: a TLS registry behind basic auth with a busybox
httpd image built here, podman with runc pulling it by digest into the test's own storage,
the cell agent supervising the containers as it does processes (probes, rolling updates,
crash-loop back-off, re-adoption after a restart) and `down` removing them.

Skipped, saying why, only when podman, runc or the registry are not installed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cellops.backends.local import process
from cellops.backends.local.backend import LocalCells
from cellops.backends.local.containers import container_entry
from cellops.backends.local.podman import Podman, missing_tools
from cellops.spec.service import ServiceSpec
from tests.imagekit import PASSWORD, USER, LocalRegistry, running_registry
from tests.integration.local_cell import (
    Cell,
    Cells,
    Poller,
    get,
    probe_http,
    serving,
    wait_for,
    write_app,
)

CELLOPS = str(Path(sys.executable).parent / "cellops")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_tools()), reason=f"{' and '.join(missing_tools())} not installed (.ci/run)"
    ),
]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRegistry]:
    """A TLS registry behind basic auth, its credentials in a Docker config.json and its CA
    in $REQUESTS_CA_BUNDLE, where cellops finds them."""
    with running_registry(tmp_path / "registry", tls=True) as running:
        docker = tmp_path / "docker"
        docker.mkdir()
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (docker / "config.json").write_text(json.dumps({"auths": {running.host: {"auth": token}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker))
        assert running.ca is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.ca))
        yield running


@pytest.fixture
def cells(tmp_path: Path, request: pytest.FixtureRequest) -> Cells:
    """Cells under tmp_path/state; afterwards their agents, containers and processes are
    gone."""
    made = Cells(tmp_path / "cells", write_app(tmp_path / "app"))
    podman = Podman(tmp_path / "cells" / "state")

    def finish() -> None:
        for cell in made.made:
            cell.kill_everything()
            podman.remove(podman.containers(cell.name))
        made.finish()

    request.addfinalizer(finish)
    return made


def image(registry: LocalRegistry, tmp_path: Path, tag: str) -> str:
    digest = registry.pusher.image("shop/web", tag, tmp_path / "layouts" / tag, tag)
    return f"{registry.host}/shop/web:{tag}@{digest}"


def container_service(cell: Cell, image: str, hash_: str, **fields: Any) -> dict[str, Any]:
    """The desired entry of a container service, as the controller writes it."""
    spec = ServiceSpec(image=image, resources={"limits": {"memory": "64Mi", "cpu": "500m"}})
    fields.setdefault("probes", {"readiness": probe_http("/hello.txt")})
    entry = cell.service(hash_, **fields) | container_entry(podman_of(cell), "web", spec)
    del entry["cwd"]
    entry["env"].pop("CONTROL_DIR")
    return entry


def podman_of(cell: Cell) -> Podman:
    return Podman(cell.paths.root.parent.parent)


def inside(cell: Cell, replica: str, *command: str) -> subprocess.CompletedProcess[str]:
    podman = podman_of(cell)
    return podman.command("exec", podman.name(cell.name, replica), *command)


# an exec probe runs inside the container (/tmp is the container's own tmpfs), through
# `podman exec`: a few tenths of a second, more on a busy machine
PROBED = ["/bin/busybox", "touch", "/tmp/probed"]
READY = {
    "readiness": probe_http("/hello.txt"),
    "liveness": {"exec": {"command": PROBED}, "periodSeconds": 1, "timeoutSeconds": 20},
}


def test_containers_serve_locked_down_with_probes_and_limits(
    registry: LocalRegistry, cells: Callable[[str], Cell], tmp_path: Path
) -> None:
    cell = cells("box")
    cell.start_agent()
    v1 = image(registry, tmp_path, "v1")
    entry = container_service(cell, v1, "c1", replicas=2, env={"VERSION": "v1"}, probes=READY)
    assert entry["image"].endswith("/shop/web@" + v1.split("@")[1])  # the digest, no tag
    applied = cell.apply({"web": entry})
    pods = wait_for("2 ready containers", lambda: cell.ready("web", 2, "c1", applied), 90)

    serving(cell, 8080, pods, timeout=30)
    who = get(cell.host, pods[0]["ports"]["http"], "/")
    assert who == {
        "replica": pods[0]["id"],
        "version": "v1",
        "host": cell.host,
        "port": pods[0]["ports"]["http"],
    }
    # from inside: the root filesystem cannot be written, no capability is left
    written = inside(cell, pods[0]["id"], "/bin/busybox", "touch", "/written")
    assert written.returncode != 0 and "Read-only file system" in written.stderr
    status = inside(cell, pods[0]["id"], "/bin/busybox", "cat", "/proc/self/status")
    caps = {
        k: v.strip() for k, _, v in (line.partition(":") for line in status.stdout.splitlines())
    }
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0
    assert caps["NoNewPrivs"] == "1"
    found = podman_of(cell).command("inspect", podman_of(cell).name(cell.name, pods[0]["id"]))
    config = json.loads(found.stdout)[0]["HostConfig"]
    assert config["ReadonlyRootfs"] is True and config["NetworkMode"] == "host"
    assert config["Memory"] == 64 * 1024 * 1024
    logs = subprocess.run(
        [CELLOPS, "logs", cell.name, "web", "--state-dir", str(podman_of(cell).state_root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert logs.returncode == 0, logs.stderr
    assert f"listening on {cell.host}:{pods[0]['ports']['http']}" in logs.stdout
    probed = ["/bin/busybox", "test", "-f", "/tmp/probed"]
    wait_for("the exec probe", lambda: inside(cell, pods[0]["id"], *probed).returncode == 0, 30)
    assert [p["restarts"] for p in cell.pods("web")] == [0, 0]


def test_rolling_update_crash_loop_and_readoption_after_an_agent_restart(
    registry: LocalRegistry, cells: Callable[[str], Cell], tmp_path: Path
) -> None:
    cell = cells("roll")
    agent = cell.start_agent()
    v1, v2 = image(registry, tmp_path, "v1"), image(registry, tmp_path, "v2")
    probes = {"readiness": probe_http("/hello.txt")}
    cell.apply({"web": container_service(cell, v1, "r1", replicas=2, probes=probes)})
    wait_for("2 ready at r1", lambda: cell.ready("web", 2, "r1"), 90)

    # a rolling update to another image: the service port never fails
    poller = Poller(cell.host, 8080)
    serving(cell, 8080, cell.pods("web"), timeout=30)
    poller.start()
    cell.apply({"web": container_service(cell, v2, "r2", replicas=2, probes=probes)})
    pods = wait_for("2 ready at r2", lambda: cell.ready("web", 2, "r2"), 90)
    serving(cell, 8080, pods, timeout=30)
    poller.stop()
    assert poller.failures == [] and poller.answers

    # a version that exits at start loops with back-off; the old replicas keep serving
    crashing = container_service(cell, v2, "r3", replicas=2, probes=probes)
    crashing["env"]["EXIT_AT_START"] = "1"
    cell.apply({"web": crashing})

    def looping() -> dict[str, Any] | None:
        new = [p for p in cell.pods("web") if p["hash"] == "r3"]
        return new[0] if new and new[0]["restarts"] >= 2 else None

    crashed = wait_for("the r3 replica to crash-loop", looping, 90)
    assert "exiting at start" in cell.log_of("web", crashed["id"]).read_text()
    assert [p["id"] for p in cell.pods("web") if p["hash"] == "r2" and p["ready"]] == [
        p["id"] for p in pods
    ]
    cell.apply({"web": container_service(cell, v2, "r2", replicas=2, probes=probes)})
    wait_for("back to 2 at r2", lambda: cell.ready("web", 2, "r2"), 60)

    # the agent dies; a container nobody recorded appears; a new agent adopts the
    # recorded ones (same replicas, same processes) and removes the stray
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    podman = podman_of(cell)
    stray = podman.name(cell.name, "web-stray")
    labels = [f"--label=dev.cellops.fleet={podman.fleet}", f"--label=dev.cellops.cell={cell.name}"]
    pinned = container_service(cell, v2, "r2")["image"]
    started = podman.command(
        "run", "-d", "--name", stray, *labels, pinned, "/bin/busybox", "sleep", "600"
    )
    assert started.returncode == 0, started.stderr
    cell.start_agent()
    wait_for("the stray removed", lambda: stray not in podman.containers(cell.name), 30)
    again = wait_for("2 ready at r2", lambda: cell.ready("web", 2, "r2"), 30)
    assert {(p["id"], p["pid"]) for p in again} == {(p["id"], p["pid"]) for p in pods}
    assert all(p["restarts"] == 0 for p in again)


def test_down_removes_every_container_of_the_cell(
    registry: LocalRegistry, cells: Callable[[str], Cell], tmp_path: Path
) -> None:
    cell = cells("down")
    agent = cell.start_agent()
    v1 = image(registry, tmp_path, "v1")
    cell.apply({"web": container_service(cell, v1, "d1", replicas=2)})
    pods = wait_for("2 ready", lambda: cell.ready("web", 2, "d1"), 90)
    podman = podman_of(cell)
    assert len(podman.containers(cell.name)) == 2
    # one replica's podman is killed while its agent is down: its container runs on
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    process.signal_group(pods[0]["pid"], signal.SIGKILL)
    assert podman.name(cell.name, pods[0]["id"]) in podman.containers(cell.name)

    LocalCells(podman_of(cell).state_root, lambda tree, target: None).stop(
        cell.name, workloads=True
    )
    assert podman.containers(cell.name) == []


def test_the_containers_demo_runs_signed_images_and_stops_the_unsigned_one() -> None:
    result = subprocess.run(
        [CELLOPS, "demo", "--containers"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("rollout-completed") == 2
    assert "has no cosign signature" in result.stdout
    assert result.stdout.count(" signed  ") == 3  # every cell answers with the signed 1.1.0
    assert "demo complete" in result.stdout
