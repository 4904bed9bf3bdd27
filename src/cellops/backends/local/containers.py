"""Replicas as containers: each one a `podman run` of the service's verified image, pinned
by digest, in the foreground of a session of its own, so the agent watches, signals and
re-adopts it like a process.

A replica's process is a small shell that pulls the image if this state folder's storage
lacks it (the pull's errors land in the replica's log) and then becomes `podman run`:
host network (the replica listens on the cell's address and its own port, from HOST and
PORT as a process does), read-only root filesystem, every capability dropped, no new
privileges, the cell's user when cells have users, the service's memory and cpu limits
and a pids limit where this host's cgroups have the controller. Its output goes straight
to the replica's log (`--log-driver passthrough`). SIGTERM is passed on to the container;
SIGKILL, or any end, removes the container by name.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellops.backends.local import process
from cellops.backends.local.podman import LABEL, Podman
from cellops.backends.local.process import Launch
from cellops.backends.local.replicas import Replica
from cellops.backends.local.users import CellUser
from cellops.images.auth import Credentials
from cellops.model.errors import BackendError
from cellops.spec.fields import quantity_value
from cellops.spec.image import parse_image
from cellops.spec.service import ServiceSpec

PIDS_LIMIT = 1024
# $1 image, $2 certificate folder, $3 auth file ("": none), $4 verify TLS (true, or false
# for a loopback registry without TLS), then `podman run`'s arguments
PULL_THEN_RUN = (
    'image=$1 certs=$2 auth=$3 verify=$4; shift 4; podman image exists "$image" ||'
    ' podman pull --quiet --tls-verify="$verify"'
    ' ${certs:+--cert-dir "$certs"} ${auth:+--authfile "$auth"} "$image" >/dev/null'
    ' || { echo "cellops: could not pull $image" >&2; exit 125; }; exec podman run "$@"'
)


class ContainerRuntime:
    def __init__(self, podman: Podman, cell: str, user: CellUser | None) -> None:
        self.podman = podman
        self.cell = cell
        self.user = user

    def start(self, replica: Replica, log: Path) -> tuple[int, int]:
        self.podman.configure()
        spec = replica.spec
        pull = spec.get("pull") or {}
        labels = {
            "fleet": self.podman.fleet,
            "cell": self.cell,
            "service": replica.service,
            "replica": replica.id,
            "revision": replica.revision,
            "hash": replica.hash,
        }
        env = process.serving_env(replica.host, replica.id, replica.ports)
        env = {**spec.get("env", {}), **env}
        name = self.podman.name(self.cell, replica.id)
        arguments = run_arguments(
            spec, name, labels, env, user=self.user, controllers=host_controllers()
        )
        command = ["/bin/sh", "-c", PULL_THEN_RUN, "cellops-replica", spec["image"]]
        command += [pull.get("certDir") or "", pull.get("authfile") or ""]
        command += ["false" if pull.get("plainHttp") else "true", *arguments]
        return process.start(command, self.podman.root, self.podman.env(), log)

    def alive(self, replica: Replica) -> bool:
        return process.alive(replica.pid, replica.started)

    def signal(self, replica: Replica, sig: signal.Signals) -> None:
        process.signal_group(replica.pid, sig)  # podman run passes SIGTERM on
        if sig == signal.SIGKILL:  # podman run dies; its container would not
            self.podman.remove([self.podman.name(self.cell, replica.id)])

    def finish(self, replica: Replica) -> None:
        process.kill_group(replica.pid, replica.started)
        self.podman.remove([self.podman.name(self.cell, replica.id)])

    def launch(self, replica: Replica) -> Launch:
        name = self.podman.name(self.cell, replica.id)
        return Launch(self.podman.root, self.podman.env(), None, ("podman", "exec", name))

    def adopt(self, replicas: list[str]) -> list[str]:
        """Remove the cell's containers that no replica record knows (an agent that died
        between starting one and recording it); the names removed."""
        known = {self.podman.name(self.cell, replica) for replica in replicas}
        strays = [name for name in self.podman.containers(self.cell) if name not in known]
        self.podman.remove(strays)
        return strays


def run_arguments(
    spec: Mapping[str, Any],
    name: str,
    labels: Mapping[str, str],
    env: Mapping[str, str],
    *,
    user: CellUser | None,
    controllers: frozenset[str],
) -> list[str]:
    """`podman run`'s arguments for one replica (after `run`)."""
    arguments = ["--rm", "--replace", "--name", name, "--pull", "never", "--network", "host"]
    arguments += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    arguments += ["--log-driver", "passthrough"]
    for key, value in sorted(labels.items()):
        arguments += ["--label", f"{LABEL}.{key}={value}"]
    for key, value in sorted(env.items()):
        arguments += ["--env", f"{key}={value}"]
    if user is not None:
        arguments += ["--user", f"{user.uid}:{user.gid}"]
    limits = spec.get("limits") or {}
    if limits.get("memory") and "memory" in controllers:
        arguments += ["--memory", str(int(limits["memory"]))]
    if limits.get("cpus") and "cpu" in controllers:
        arguments += ["--cpus", f"{float(limits['cpus']):g}"]
    if "pids" in controllers:
        arguments += ["--pids-limit", str(PIDS_LIMIT)]
    return [*arguments, str(spec["image"]), *spec.get("command", [])]


@functools.cache
def host_controllers() -> frozenset[str]:
    """The cgroup controllers this host has enabled (limits on the others are left out)."""
    try:
        lines = Path("/proc/cgroups").read_text().splitlines()[1:]
    except OSError:
        return frozenset()
    return frozenset(f[0] for f in (line.split() for line in lines) if len(f) >= 4 and f[3] == "1")


def container_entry(podman: Podman, service: str, spec: ServiceSpec) -> dict[str, Any]:
    """A container service's part of desired.json: its image by digest alone (the digest
    its verdict covers, never a tag), how its pull finds credentials and the registry's
    CA (the same as image verification: Docker's config.json, $REQUESTS_CA_BUNDLE), and
    its limits."""
    assert spec.image is not None, f"{service} has neither run nor image"
    ref = parse_image(spec.image)
    if ref.digest is None:
        raise BackendError(
            f"service {service}: {spec.image} is not pinned by a digest: local cells run"
            " images by digest only (imagePolicy requireDigest, or resolveTags)"
        )
    podman.configure()
    try:
        header = Credentials.from_docker_config().basic(ref.registry)
    except ValueError as exc:
        raise BackendError(f"service {service}: registry credentials: {exc}") from None
    authfile = podman.write_credentials(ref.registry, header and header.removeprefix("Basic "))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    certs = podman.write_ca(Path(bundle) if bundle else None)
    limits = spec.resources.limits if spec.resources is not None else None
    return {
        "image": f"{ref.registry}/{ref.repository}@{ref.digest}",
        "command": [],
        "pull": {
            "authfile": str(authfile or ""),
            "certDir": str(certs or ""),
            "plainHttp": _plain_http(ref.registry),
        },
        "limits": {
            "memory": int(quantity_value(limits.memory)) if limits and limits.memory else None,
            "cpus": float(quantity_value(limits.cpu)) if limits and limits.cpu else None,
        },
    }


def speaks_tls(host: str) -> bool:
    """Whether `host` (host:port) answers a TLS handshake: the image verifier asks a
    loopback registry that does not over plain HTTP, and so does the pull. One that cannot
    be reached counts as TLS (its pull then fails, closed)."""
    name, _, port = host.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection((name.strip("[]"), int(port or 443)), timeout=5) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except ssl.SSLError:
        return False
    except (OSError, ValueError):
        return True


def _plain_http(registry: str) -> bool:
    from cellops.images.registry import is_loopback  # `requests`: only when pulling

    return is_loopback(registry) and not speaks_tls(registry)
