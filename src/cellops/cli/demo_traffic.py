"""The demo's tenant traffic: the embedded router (`cellops router run`, a process of its
own) over the routing table the controller publishes, and a steady, bounded stream of
requests from each of the example's tenants through it, counted per phase, tenant and cell.

Containment, in the unit users care about: the bad release may cost the tenants of the
cells it reached (the canary's) some requests, and must cost every other tenant none.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from cellops.cli.output import console
from cellops.router.tablefile import read_table
from cellops.store.base import Store
from cellops.store.records import CellStep

INTERVAL = 0.1  # seconds between two requests of one tenant: 10 per second each
TIMEOUT = 5.0
CLI = "from cellops.cli.main import main; main()"  # `cellops` with this Python


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)  # tenant -> requests
    failed: Counter[str] = field(default_factory=Counter)  # tenant -> failed requests


class TenantTraffic:
    """Start after the controller published its first table; `phase()` names what the
    following requests are counted under."""

    def __init__(self, table: Path, workdir: Path) -> None:
        self.table = read_table(table)
        self.cells = dict(self.table.tenants)  # nobody moves during the demo
        self.path = table
        self.log = workdir / "router.log"
        self.tallies: dict[str, Tally] = {}
        self.current = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._router: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, phase: str) -> None:
        self.phase(phase)
        self._router = subprocess.Popen(
            [
                *(sys.executable, "-c", CLI, "router", "run", "--table", str(self.path)),
                *("--listen", "127.0.0.1:0", "--timeout", str(TIMEOUT)),
            ],
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
        )
        assert self._router.stdout is not None
        line = self._router.stdout.readline()  # "router listening on http://127.0.0.1:N ..."
        if "http://127.0.0.1:" not in line:
            raise RuntimeError(f"the router did not start (see {self.log}): {line.strip()}")
        self.port = int(line.split("http://127.0.0.1:")[1].split()[0])
        for tenant in sorted(self.cells):
            thread = threading.Thread(target=self._send, args=(tenant,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def phase(self, name: str) -> None:
        with self._lock:
            self.current = name
            self.tallies.setdefault(name, Tally())

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=TIMEOUT * 2)
        router, self._router = self._router, None
        if router is not None:
            router.terminate()
            try:
                router.wait(timeout=10)
            except subprocess.TimeoutExpired:
                router.kill()
                router.wait()

    def _send(self, tenant: str) -> None:
        connection: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            ok = _request(connection, tenant)
            if not ok:
                connection.close()
                connection = None
            with self._lock:
                tally = self.tallies[self.current]
                tally.sent[tenant] += 1
                tally.failed[tenant] += 0 if ok else 1
            next_at += INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if connection is not None:
            connection.close()

    def leaks(self, phase: str, reached: set[str]) -> dict[str, int]:
        """Failed requests in `phase` of tenants whose cell is not in `reached`."""
        tally = self.tallies.get(phase, Tally())
        return {t: n for t, n in tally.failed.items() if n and self.cells.get(t) not in reached}

    def report(self, reached: set[str]) -> tuple[Table, Table]:
        """Per tenant and per cell: requests and failures in each phase."""
        phases = list(self.tallies)
        tenants = Table("tenant", "cell", *phases, title="tenant traffic through the router")
        for tenant in sorted(self.cells, key=lambda t: (self.cells[t], t)):
            cell = self.cells[tenant]
            mark = " (reached)" if cell in reached else ""
            tenants.add_row(tenant, cell + mark, *(self._cell_text(p, {tenant}) for p in phases))
        cells = Table("cell", "tenants", *phases, title="failed requests per cell")
        for cell in sorted(set(self.cells.values())):
            members = {t for t, c in self.cells.items() if c == cell}
            cells.add_row(cell, str(len(members)), *(self._cell_text(p, members) for p in phases))
        return tenants, cells

    def _cell_text(self, phase: str, tenants: set[str]) -> str:
        tally = self.tallies[phase]
        sent = sum(tally.sent[t] for t in tenants)
        failed = sum(tally.failed[t] for t in tenants)
        style = "red" if failed else "green"
        return f"[{style}]{failed} failed[/] of {sent}"


def _request(connection: http.client.HTTPConnection, tenant: str) -> bool:
    try:
        connection.request("GET", "/", headers={"X-Tenant-Id": tenant})
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def tenant_containment(traffic: TenantTraffic, store: Store, phase: str) -> bool:
    """Print the traffic's tables; True if, in `phase` (the bad release), no tenant lost a
    request outside the cells its rollout reached."""
    latest = store.rollouts(limit=1)
    steps = store.cell_steps(latest[0].id) if latest else {}
    untouched = (CellStep.PENDING, CellStep.SKIPPED)
    reached = {cell for cell, (_, step, _) in steps.items() if step not in untouched}
    for table in traffic.report(reached):
        console.print(table)
    leaks = traffic.leaks(phase, reached)
    if leaks:
        lost = ", ".join(f"{t} ({traffic.cells[t]}): {n}" for t, n in sorted(leaks.items()))
        console.print(
            f"[red]✗ tenants outside {', '.join(sorted(reached))} lost requests:[/] {lost}"
        )
        return False
    console.print(
        f"[green]✓[/] the {phase} cost no request to any tenant outside"
        f" {', '.join(sorted(reached)) or 'no cell'}",
        soft_wrap=True,
    )
    return True
