"""Replica records: one JSON file per replica process, so a restarted agent re-adopts
them; ports allocated per cell without collisions."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cellops.backends.local.layout import read_json, write_json

PORT_RANGE = range(20000, 30000)


class State:
    RUNNING = "running"
    WAITING = "waiting"  # exited or killed; restarts at next_start_at (CrashLoopBackOff)
    STOPPING = "stopping"


@dataclass
class Replica:
    id: str
    service: str
    hash: str
    revision: str
    ports: dict[str, int]
    host: str = ""  # the address it listens on ("" in records from before it was kept)
    pid: int = 0
    started: int = 0  # process start time in clock ticks, with pid: the identity
    restarts: int = 0
    state: str = State.WAITING
    next_start_at: float = 0.0
    stop_deadline: float = 0.0  # when stopping: SIGKILL then; 0 until SIGTERM is sent
    drain_until: float = 0.0  # when stopping: SIGTERM by then, routed to or not
    ever_ready: bool = False
    ready_since: float = 0.0
    backoff: int = 0  # exponent of the next restart delay; reset after a good long run
    # this replica's own version of the service (command, cwd, env, ports, probes): a
    # replica is started, probed and routed as its version says, not as the newest one
    spec: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        write_json(folder / f"{self.id}.json", asdict(self))

    def forget(self, folder: Path) -> None:
        (folder / f"{self.id}.json").unlink(missing_ok=True)


def load_all(folder: Path) -> list[Replica]:
    found = []
    for path in sorted(folder.glob("*.json")):
        data = read_json(path)
        if data is not None:
            with contextlib.suppress(TypeError):
                found.append(Replica(**data))
    return found


def allocate(host: str, count: int, taken: set[int]) -> list[int]:
    """`count` ports free on `host`: not taken by a replica and bindable right now."""
    ports: list[int] = []
    for port in PORT_RANGE:
        if len(ports) == count:
            break
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        ports.append(port)
        taken.add(port)
    if len(ports) < count:
        raise RuntimeError(f"no free ports left on {host}")
    return ports


def endpoints(replica: Replica, spec: dict[str, Any]) -> list[tuple[int, tuple[str, int]]]:
    """(service port, the replica's own address and port for it), by port name."""
    return [
        (int(p["port"]), (replica.host, replica.ports[p["name"]]))
        for p in spec["ports"]
        if p["name"] in replica.ports
    ]


def port_map(replica: Replica) -> dict[str, int]:
    """A probe's port (a name, or a declared number) -> this replica's own port."""
    mapping = dict(replica.ports)
    for port in replica.spec.get("ports", []):
        if port["name"] in replica.ports:
            mapping[f"#{port['port']}"] = replica.ports[port["name"]]
    return mapping
