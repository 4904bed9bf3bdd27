"""The agent's side of the cell's serving path: it starts the cell's proxy process,
restarts it when it dies, adopts the one a previous agent started (pid + start time, as
replicas), hands it the ready endpoints (`endpoints.json`) and reads back what it serves
(`proxy.json`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from cellops.backends.local import process
from cellops.backends.local.layout import CellPaths, read_json, write_json

RESTART_GAP = 0.5  # seconds between two starts of the proxy
REFUSED_GAP = 5.0  # ... after it was refused the address
_PASSED_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")
Endpoint = tuple[str, int]


@dataclass(frozen=True)
class Served:
    """What the proxy serves now, as it reports it."""

    running: bool
    listeners: dict[int, str] = field(default_factory=dict)  # "bound", or why not
    routes: dict[int, frozenset[Endpoint]] = field(default_factory=dict)  # bound ports only
    refused: str = ""  # the address is held by someone else

    def listener(self, port: int) -> str:
        if self.refused:
            return f"failed: {self.refused}"
        if not self.running:
            return "waiting: the cell's proxy is not running"
        return self.listeners.get(port, "waiting: not yet listening")

    def routed(self, port: int, endpoint: Endpoint) -> bool:
        """Routed to, or cannot be (its port is not served): a replica is not held back
        for what it cannot change."""
        return endpoint in self.routes.get(port, (endpoint,))


class ServingPath:
    def __init__(self, paths: CellPaths, host: str) -> None:
        self.paths, self.host = paths, host
        self.pid = self.started = 0
        self.next_start = 0.0
        self.published: dict[str, Any] | None = None
        self._adopt()

    def _adopt(self) -> None:
        """Take over the proxy a previous agent left running; one on another address (the
        cell moved) is stopped, and its address freed."""
        record = read_json(self.paths.proxy) or {}
        pid, started = int(record.get("pid", 0)), int(record.get("started") or 0)
        if record.get("host") == self.host:
            self.pid, self.started = pid, started  # dead: `keep` reports the restart
        elif process.alive(pid, started):
            os.kill(pid, signal.SIGTERM)

    def alive(self) -> bool:
        return process.alive(self.pid, self.started)

    def keep(self, now: float) -> str | None:
        """Start the proxy if it is not running; says so when one that ran had died."""
        if self.alive() or now < self.next_start:
            return None
        lost, refused = self.pid, self.served().refused
        self.next_start = now + (REFUSED_GAP if refused else RESTART_GAP)
        self._start()
        if refused or not lost:
            return None
        return f"the cell's proxy (pid {lost}) exited; restarted"

    def _start(self) -> None:
        command = [sys.executable, "-m", "cellops.backends.local.proxy"]
        command += ["--cell-root", str(self.paths.root), "--host", self.host]
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
        with open(self.paths.proxy_log, "ab") as log:
            proxy = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped with the agent
                close_fds=True,
            )
        self.pid, self.started = proxy.pid, process.start_time(proxy.pid) or 0

    def publish(self, routes: dict[int, list[Endpoint]]) -> bool:
        """Hand the proxy the ready endpoints of each service port; True when they changed."""
        document = {
            "host": self.host,
            "ports": {str(port): [list(e) for e in eps] for port, eps in sorted(routes.items())},
        }
        if document == self.published:
            return False
        write_json(self.paths.endpoints, document)
        self.published = document
        if self.served().running:  # it handles the signal once it reports: wake it now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGUSR1)
        return True

    def served(self) -> Served:
        record = read_json(self.paths.proxy) or {}
        if not self.pid or record.get("pid") != self.pid:
            return Served(running=False)
        if record.get("refused"):
            return Served(running=False, refused=str(record["refused"]))
        if not self.alive():
            return Served(running=False)
        return Served(
            running=True,
            listeners={int(p): str(s) for p, s in record.get("listeners", {}).items()},
            routes={
                int(p): frozenset((str(h), int(n)) for h, n in eps)
                for p, eps in record.get("routes", {}).items()
            },
        )

    def stop(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
