"""A replica from start to serving, as a container and as a process (for bench/images.py).

The same server both ways: busybox httpd serving a static file on $HOST:$PORT. The
container is the busybox image built and pushed by the bench, run the way a local cell's
agent runs it (ContainerRuntime: podman with runc, host network, read-only root, no
capabilities); the process runs the host's busybox the way the agent runs `app/` code
(ProcessRuntime). Timed from the runtime's start call to the first HTTP 200 on the
replica's port (polled every 5 ms); the container's first start, which pulls the image
into the bench's own storage, is reported apart.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import time
from pathlib import Path
from typing import Any

from tests.imagekit import LocalRegistry

from cellops.backends.local import process
from cellops.backends.local.containers import ContainerRuntime, container_entry
from cellops.backends.local.podman import Podman, missing_tools
from cellops.backends.local.replicas import Replica, allocate
from cellops.backends.local.runtime import ProcessRuntime, Runtime
from cellops.spec.service import ServiceSpec

HOST = "127.0.0.1"
DEADLINE = 120.0
SERVE = 'exec busybox httpd -f -p "$HOST:$PORT" -h www'


def start_to_ready(registry: LocalRegistry, work: Path, runs: int) -> int:
    """Print the table; the number of replicas that never served."""
    missing = missing_tools()
    if missing or shutil.which("busybox") is None:
        print(f"{' and '.join(missing) or 'busybox'} not installed: replica starts not measured")
        return 0
    digest = registry.pusher.image("bench/httpd", "1", work / "layout", "bench")
    podman = Podman(work / "state")
    docker = work / "docker"  # the registry's login, where cellops reads it
    docker.mkdir()
    auths = {host: {"auth": token} for host, token in registry.credentials.auths.items()}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    os.environ["DOCKER_CONFIG"] = str(docker)
    spec = ServiceSpec(image=f"{registry.host}/bench/httpd@{digest}")
    container = {"env": {}, **container_entry(podman, "httpd", spec)}
    www = work / "app" / "www"
    www.mkdir(parents=True)
    (www / "hello.txt").write_text("hello\n")
    proc = {"command": ["/bin/sh", "-c", SERVE], "cwd": str(work / "app"), "env": {}}
    containers = ContainerRuntime(podman, "bench", None)
    print(f"{'replica start to serving':<38} {'runs':>9} {'ms':>9}")
    failures = 0
    first = _time(containers, container, work, "pull")
    failures += first is None
    _row("container, first (pulls the image)", [first] if first is not None else [])
    for label, runtime, entry in (
        ("container (podman, runc)", containers, container),
        ("process (the same busybox httpd)", ProcessRuntime(None), proc),
    ):
        times = [_time(runtime, entry, work, f"{label[:4]}-{i}") for i in range(runs)]
        failures += sum(t is None for t in times)
        _row(label, [t for t in times if t is not None])
    return failures


def _row(label: str, times: list[float]) -> None:
    median = f"{statistics.median(times) * 1000:.0f}" if times else "-"
    spread = f" ({min(times) * 1000:.0f}-{max(times) * 1000:.0f})" if len(times) > 1 else ""
    print(f"{label:<38} {len(times):>9} {median:>9}{spread}")


def _time(runtime: Runtime, spec: dict[str, Any], work: Path, name: str) -> float | None:
    port = allocate(HOST, 1, set())[0]
    replica = Replica(f"httpd-{name}", "httpd", "h", "r", {"http": port}, HOST, spec=spec)
    log = work / "logs" / f"{name}.log"
    started = time.perf_counter()
    replica.pid, replica.started = runtime.start(replica, log)
    try:
        while time.perf_counter() - started < DEADLINE and runtime.alive(replica):
            if _serves(port):
                return time.perf_counter() - started
            time.sleep(0.005)
        print(f"MISSED: {name} never served; its log:\n{log.read_text()[-2000:]}")
        return None
    finally:
        _stop(runtime, replica)


def _serves(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/hello.txt")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _stop(runtime: Runtime, replica: Replica) -> None:
    runtime.signal(replica, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while runtime.alive(replica) and time.monotonic() < deadline:
        process.reap([replica.pid])  # our child: a zombie until collected
        time.sleep(0.01)
    runtime.finish(replica)
