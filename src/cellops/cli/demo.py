"""`cellops demo`: the example fleet, live, on this machine.

In a temporary Git repo and state folder it starts the controller (with its push webhook),
rolls the first commit out wave by wave, then a good change (payments 1.1.0), then a bad
one (payments 1.2.0 crash-loops). The bad one must stop at the canary: rolled back, the
rollout halted, every other cell still on 1.1.0 and answering. Through both releases the
example's tenants send steady traffic through the embedded router (`demo_traffic`): no
tenant outside the cells the bad release reached may lose a request. It prints the
measured times and exits 0 only if containment held.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cellops.cli.output import Exit, console
from cellops.store.records import Event, RolloutState

if TYPE_CHECKING:  # the controller is loaded when the demo runs, not at every command's start
    from cellops.cli.demo_traffic import TenantTraffic
    from cellops.wiring import Wiring

PAYMENTS = "services/payments/app/server.py"
STEP_TIMEOUT = 180.0
GOOD, BAD = "good release", "bad release"  # the phases tenant traffic is counted in
_ENDED = {RolloutState.COMPLETED, RolloutState.HALTED, RolloutState.ABORTED}


@dataclass
class Rollout:
    committed: float
    canary_healthy: float | None = None
    all_done: float | None = None
    failed: float | None = None
    rolled_back: float | None = None
    recovered: float | None = None


def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the fleet running afterwards."),
    containers: bool = typer.Option(
        False, "--containers", help="Signed images as podman containers (needs podman, runc)."
    ),
) -> None:
    """Run the example fleet: a good release rolls out, a bad one stops at the canary."""
    if containers:
        from cellops.cli.demo_containers import demo_containers

        demo_containers(keep)
    else:
        _example(keep)


def _example(keep: bool) -> None:
    """The example fleet's demo (see the module's docstring)."""
    from cellops.cli.demo_traffic import TenantTraffic, tenant_containment
    from cellops.cli.views import overview
    from cellops.controller.reconcile import Settings
    from cellops.router.publisher import TABLE_FILE
    from cellops.source.git import create_repository
    from cellops.wiring import wire

    workdir = Path(tempfile.mkdtemp(prefix="cellops-demo-"))
    repo, state = workdir / "fleet", workdir / "state"
    fleet_copy(repo)
    create_repository(repo, "Initial fleet: ledger and payments 1.0.0 in six cells")
    wiring = wire(repo, state, Settings(poll_interval=30.0))
    _isolation(state)
    runner = _Controller(wiring)
    traffic: TenantTraffic | None = None
    held = False
    try:
        runner.start()
        console.rule("1. The first commit reaches all six cells, canary first")
        first = runner.push_and_wait(repo, None, RolloutState.COMPLETED)
        traffic = TenantTraffic(state / TABLE_FILE, workdir)
        traffic.start(GOOD)  # every tenant, 10 requests a second, through the router
        console.rule("2. A good release: payments 1.1.0, under tenant traffic")
        _edit(repo / PAYMENTS, 'VERSION = "1.0.0"', 'VERSION = "1.1.0"')
        good = runner.push_and_wait(repo, "payments 1.1.0", RolloutState.COMPLETED)
        console.rule("3. A bad release: payments 1.2.0 crashes at start")
        traffic.phase(BAD)
        _edit(
            repo / PAYMENTS,
            'VERSION = "1.1.0"',
            'VERSION = "1.2.0"\nraise SystemExit("payments 1.2.0: PAYMENTS_KEY is not set")',
        )
        bad = runner.push_and_wait(repo, "payments 1.2.0", RolloutState.HALTED)
        traffic.stop()
        console.rule("4. Containment")
        held = _containment(wiring)
        held &= tenant_containment(traffic, wiring.store, BAD)
        console.print(overview(wiring.store, wiring.observe))
        _summary(first, good, bad)
    finally:
        if traffic is not None:
            traffic.stop()
        runner.stop()
        if keep:  # the fleet, a detached controller and the same dashboard keep running
            runner.server.keep(repo, state)
        else:
            for cell in sorted(p.name for p in (state / "cells").glob("*")):
                wiring.local.stop(cell, workloads=True)
            wiring.close()
            shutil.rmtree(workdir, ignore_errors=True)
    if not held:
        console.print("[red]✗ containment did not hold[/]")
        raise typer.Exit(Exit.REJECTED)
    console.print("[green]✓ demo complete:[/] the bad release never left its canary cell")


def fleet_copy(repo: Path) -> str:
    """Copy the example fleet to `repo` under a name of its own, and return the name.

    Local cells' addresses derive from the fleet's name and the cell's, and one address
    has one holder on the machine: with the example's name as it is, a demo started while
    another runs (a second terminal, `make test`) would be refused every address, the
    other demo's cells holding them."""
    from cellops.cli.init import example_fleet

    shutil.copytree(example_fleet(), repo, ignore=shutil.ignore_patterns("__pycache__"))
    name = f"demo-{secrets.token_hex(4)}"
    _edit(repo / "cellops.yaml", "\n  name: demo\n", f"\n  name: {name}\n")
    return name


class _Controller:
    """The controller on a background thread, fed by its real webhook."""

    def __init__(self, wiring: Wiring) -> None:
        from cellops.cli.demo_dashboard import DemoDashboard
        from cellops.controller.loop import ControllerLoop
        from cellops.store.sqlite import SqliteStore

        self.wiring = wiring
        self.secret = secrets.token_hex(16)
        self.loop = ControllerLoop(wiring.reconciler, poll_interval=30.0)
        self.server = DemoDashboard(wiring, self.loop, self.secret)  # API, webhook, dashboard
        self.thread = threading.Thread(target=self.loop.run, name="controller", daemon=True)
        self.reader = SqliteStore(wiring.store_path)
        self.seen = 0
        self.port = 0

    def start(self) -> None:
        self.port = self.server.start()  # prints the dashboard's address and tokens
        self.thread.start()

    def stop(self) -> None:
        self.loop.stop()
        self.thread.join(timeout=30)
        self.server.stop()
        self.reader.close()

    def push_and_wait(self, repo: Path, message: str | None, until: RolloutState) -> Rollout:
        from cellops.source.git import commit_all

        head = commit_all(repo, message) if message else self.wiring.source.resolve("HEAD")
        timing = Rollout(committed=time.time())
        body = json.dumps({"ref": "refs/heads/main", "after": head}).encode()
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhook",
            data=body,
            method="POST",
            headers={
                "X-Hub-Signature-256": signature,
                "X-GitHub-Event": "push",
                "Content-Type": "application/json",
            },
        )
        urllib.request.urlopen(request, timeout=5).close()
        deadline = time.time() + STEP_TIMEOUT
        while time.time() < deadline:
            for event in self.reader.events(after=self.seen, limit=500):
                self.seen = event.id
                if event.revision == head or event.rollout is not None or event.kind == "drift":
                    _show(event, timing)
                    _time(event, timing)
            rollouts = self.reader.rollouts(limit=1)
            latest = rollouts[0] if rollouts else None
            done = latest is not None and latest.revision == head and latest.state is until
            if done and (until is not RolloutState.HALTED or timing.recovered is not None):
                return timing
            if latest is not None and latest.revision == head and latest.state in _ENDED - {until}:
                console.print(f"[red]✗ the rollout ended {latest.state}, not {until}[/]")
                raise typer.Exit(Exit.REJECTED)
            time.sleep(0.1)
        raise typer.Exit(Exit.REJECTED)


def _show(event: Event, timing: Rollout) -> None:
    style = {
        "cell-failed": "red",
        "rollout-halted": "red",
        "rolled-back": "yellow",
        "healthy": "green",
        "recovered": "green",
        "rollout-completed": "green",
    }
    console.print(
        f"  {event.at - timing.committed:6.2f}s  {event.kind:<18} {event.message}",
        style=style.get(event.kind),
        markup=False,
        soft_wrap=True,
    )


def _time(event: Event, timing: Rollout) -> None:
    elapsed = event.at - timing.committed
    if event.kind == "healthy" and timing.canary_healthy is None:
        timing.canary_healthy = elapsed
    elif event.kind == "rollout-completed":
        timing.all_done = elapsed
    elif event.kind == "cell-failed":
        timing.failed = elapsed
    elif event.kind == "rolled-back":
        timing.rolled_back = elapsed
    elif event.kind == "recovered":
        timing.recovered = elapsed


def _containment(wiring: Wiring) -> bool:
    """Every cell runs payments 1.1.0 and answers; the bad revision is applied nowhere."""
    from cellops.backends.local import isolation
    from cellops.spec.cell import local_address

    current = wiring.store.setting("fleet.current")
    good = {r.applied_rev for r in wiring.store.ledger_rows() if r.service == "payments"}
    ok = current not in good and len(good) == 1
    table = Table("cell", "runs as", "payments answers", "version", "verdict")
    fleet = wiring.compiler.revision(current or "HEAD").fleet.metadata.name
    for cell, desired in sorted(wiring.compiler.desired(current or "HEAD").cells.items()):
        address = local_address(fleet, cell, desired.spec)
        try:
            with urllib.request.urlopen(f"http://{address}:8081/", timeout=3) as r:
                version = json.loads(r.read())["version"]
        except OSError as exc:
            version = f"no answer: {exc}"
        fine = version == "1.1.0"
        ok &= fine
        table.add_row(
            cell,
            isolation.user_of(wiring.local.root, cell) or "this user",
            "yes" if fine or "no answer" not in version else "no",
            version,
            "[green]held[/]" if fine else "[red]LEAKED[/]",
        )
    console.print(table)
    return ok


def _isolation(state: Path) -> None:
    """Say how the cells are kept apart here, or what this host cannot enforce."""
    from cellops.backends.local import isolation

    note = isolation.announce(state)
    if note:
        console.print(f"[yellow]![/] {note} (docs/operations.md, Isolation)", soft_wrap=True)
    else:
        console.print(
            "Each cell runs as a user of its own (cellops-…), reaches only its own address"
            f" (nftables table inet {isolation.table_name(state)}) and cannot read another's"
            " state.",
            soft_wrap=True,
        )


def _summary(first: Rollout, good: Rollout, bad: Rollout) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    table = Table("measured (from the commit)", "value", title="summary", title_justify="left")
    table.add_row("first commit: all 6 cells healthy", seconds(first.all_done))
    table.add_row("good release: canary healthy", seconds(good.canary_healthy))
    table.add_row("good release: all 6 cells healthy (with bakes)", seconds(good.all_done))
    table.add_row("bad release: canary failure detected", seconds(bad.failed))
    table.add_row("bad release: canary rolled back", seconds(bad.rolled_back))
    table.add_row("bad release: canary healthy on 1.1.0 again", seconds(bad.recovered))
    console.print(table)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"{path}: the demo expected to find {old!r}")
    path.write_text(text.replace(old, new, 1))
