"""How a replica runs: as an OS process (`app/` code) or as a container (an image).

The agent supervises replicas the same way whatever runs them: it starts one, asks if it
is alive, signals it, cleans up after it, and runs its exec probes beside it. Each
runtime answers those questions; `Runtimes.of` picks one by the replica's version (an
`image` in its spec: a container).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Protocol

from cellops.backends.local import process
from cellops.backends.local.process import Launch
from cellops.backends.local.replicas import Replica
from cellops.backends.local.users import CellUser


class Runtime(Protocol):
    def start(self, replica: Replica, log: Path) -> tuple[int, int]:
        """Start it writing to `log`; (pid, start time) of what the agent watches."""

    def alive(self, replica: Replica) -> bool: ...

    def signal(self, replica: Replica, sig: signal.Signals) -> None:
        """SIGTERM: stop gracefully; SIGKILL: stop now, all of it."""

    def finish(self, replica: Replica) -> None:
        """After it ended or was killed: remove whatever it left behind."""

    def launch(self, replica: Replica) -> Launch:
        """Where, with what environment and as whom its exec probes run."""


class ProcessRuntime:
    """A process group of its own session, identified by pid and start time, run as the
    cell's user (None: as the agent's)."""

    def __init__(self, user: CellUser | None) -> None:
        self.user = user

    def start(self, replica: Replica, log: Path) -> tuple[int, int]:
        launch = self.launch(replica)
        return process.start(replica.spec["command"], launch.cwd, launch.env, log, launch.user)

    def alive(self, replica: Replica) -> bool:
        return process.alive(replica.pid, replica.started)

    def signal(self, replica: Replica, sig: signal.Signals) -> None:
        process.signal_group(replica.pid, sig)

    def finish(self, replica: Replica) -> None:
        process.kill_group(replica.pid, replica.started)  # its children, if any

    def launch(self, replica: Replica) -> Launch:
        env = process.replica_env(replica.spec, replica.host, replica.id, replica.ports, self.user)
        return Launch(Path(replica.spec["cwd"]), env, self.user)


def is_container(spec: dict[str, object]) -> bool:
    return bool(spec.get("image"))
