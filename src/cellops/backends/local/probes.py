"""Probes with Kubernetes semantics: http, tcp and exec handlers; period, timeout,
initial delay, success and failure thresholds. A probe runs in a worker thread so a slow
one never stalls the agent's loop."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellops.backends.local.process import Launch, popen_options


def run_probe(
    probe: dict[str, Any], host: str, ports: dict[str, int], where: Launch | Path
) -> bool:
    """One probe of a replica. An exec probe runs as the replica does (`where`: its folder,
    environment and user); given only a folder, with this process's environment."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "http" in probe:
            handler = probe["http"]
            connection_type = (
                http.client.HTTPSConnection
                if handler.get("scheme") == "HTTPS"
                else http.client.HTTPConnection
            )
            connection = connection_type(host, _port(handler["port"], ports), timeout=timeout)
            try:
                connection.request(
                    "GET", handler.get("path", "/"), headers=handler.get("headers") or {}
                )
                status = connection.getresponse().status
            finally:
                connection.close()
            return 200 <= status < 400
        if "tcp" in probe:
            with socket.create_connection((host, _port(probe["tcp"]["port"], ports)), timeout):
                return True
        if "exec" in probe:
            launch = where if isinstance(where, Launch) else Launch(where, dict(os.environ))
            command = [*launch.prefix, *probe["exec"]["command"]]
            options = popen_options(launch, command[0])
            done = subprocess.run(
                command, timeout=timeout, stdout=subprocess.DEVNULL, check=False, **options
            )
            return done.returncode == 0
    except (OSError, http.client.HTTPException, subprocess.TimeoutExpired):
        return False
    return False


def _port(port: int | str, ports: dict[str, int]) -> int:
    """A named port, or a declared number, maps to the replica's allocated port."""
    if isinstance(port, str):
        return ports[port]
    return ports.get(f"#{port}", port)


@dataclass
class ProbeState:
    """Consecutive results of one probe of one replica, judged by its thresholds."""

    probe: dict[str, Any]
    started_at: float
    passed: bool | None = None  # None until the thresholds decide
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    pending: Future[bool] | None = field(default=None, repr=False)

    def due(self, now: float) -> bool:
        delay = float(self.probe.get("initialDelaySeconds", 0))
        return self.pending is None and now >= max(self.next_at, self.started_at + delay)

    def record(self, ok: bool, now: float) -> None:
        self.pending = None
        self.next_at = now + float(self.probe.get("periodSeconds", 10))
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.passed = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.passed = False


class Prober:
    """Runs due probes on a small thread pool and folds finished results in."""

    def __init__(self, workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def tick(
        self, state: ProbeState, now: float, host: str, ports: dict[str, int], where: Launch | Path
    ) -> None:
        if state.pending is not None and state.pending.done():
            state.record(state.pending.result(), now)
        if state.due(now):
            state.pending = self._pool.submit(run_probe, state.probe, host, ports, where)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
