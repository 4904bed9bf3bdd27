"""The fault bench's invariants, read from what an operator can look at: the store (the
rollout, its events and cell steps, the ledger), each cell agent's `status.json` and
`desired.json`, the processes on the machine and the answers on each cell's service port.

Cell steps are not assumed beyond "a failed cell ends rolled back (or recovered)"; the
history is read from the events (`applied`, `healthy`, `wave-done`, `cell-failed`,
`rolled-back`, `recovered`, `rollout-halted`, `rollout-completed`), so the checks hold
while the rollout's terminal cell states evolve.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.controller_harness import Fleet, plan_cells

from cellops.backends.local.layout import read_json
from cellops.store.records import Event, Rollout, RolloutState

ROLLED_BACK = {"rolled-back", "recovered"}  # the steps a failed cell may end in


@dataclass(frozen=True)
class Before:
    """The fleet at rest, before a trial's release."""

    answers: dict[tuple[str, str], str | None]  # (cell, service) -> GET / answer
    pids: dict[tuple[str, str], list[int]]  # (cell, service) -> replica pids


@dataclass(frozen=True)
class Expect:
    """How a trial's rollout must end."""

    state: RolloutState
    service: str  # the service the release changes
    version: str  # its new version, served where the release is kept
    crashes_in: frozenset[str] = field(default_factory=frozenset)  # fails where given


def look_before(fleet: Fleet) -> Before:
    keys = [(c, s) for c in fleet.cells for s in fleet.services]
    return Before({(c, s): fleet.get(c, s) for c, s in keys}, fleet.replica_pids())


def violations(fleet: Fleet, revision: str, expect: Expect, before: Before) -> list[str]:
    """Every broken promise of the trial, one line each ([] when all hold)."""
    rollouts = fleet.rollouts_of(revision)
    if len(rollouts) != 1:
        return [f"{len(rollouts)} rollouts of {revision[:12]} (expected 1)"]
    rollout = rollouts[0]
    if rollout.state is RolloutState.RUNNING:
        return [f"rollout still running (wave {rollout.wave} {rollout.phase})"]
    events = fleet.events(rollout=rollout.id)
    given = {str(e.cell) for e in events if e.kind == "applied"}
    return [
        *ending(rollout, events, expect),
        *waves(rollout, events),
        *failures(fleet, rollout, events),
        *cells(fleet, expect, before, given),
        *replicas(fleet, expect, before, given),
    ]


def ending(rollout: Rollout, events: list[Event], expect: Expect) -> list[str]:
    found = []
    if rollout.state is not expect.state:
        found.append(f"rollout ended {rollout.state} ({rollout.reason}), expected {expect.state}")
    kinds = collections.Counter(e.kind for e in events)
    found += [
        f"{kinds[k]} {k} events"
        for k in ("rollout-started", "rollout-completed", "rollout-halted")
        if kinds[k] > 1
    ]
    failed = sorted({str(e.cell) for e in events if e.kind == "cell-failed"})
    given = {str(e.cell) for e in events if e.kind == "applied"}
    if failed != sorted(given & expect.crashes_in):
        found.append(f"failed cells {failed}, expected {sorted(given & expect.crashes_in)}")
    return found


def waves(rollout: Rollout, events: list[Event]) -> list[str]:
    """Waves in plan order, none skipped, no cell given the revision twice.

    "Applied twice" is two `applied` events for one cell in one rollout: two applies the
    rollout meant. A re-apply after a crash (the same desired state, sent again because the
    first send was not recorded yet) is idempotent and records no second event.
    """
    plan = plan_cells(rollout)
    wave_of = {cell: index for index, cells in enumerate(plan) for cell in cells}
    applied = [e for e in events if e.kind == "applied"]
    found = [f"{c} applied {n} times" for c, n in _per_cell(applied).items() if n > 1]
    order = [wave_of.get(str(e.cell), -1) for e in applied]
    if -1 in order:
        found.append("a cell outside the plan was applied")
    if order != sorted(order):
        found.append(f"waves applied out of order: {order}")
    healthy = {str(e.cell): e.id for e in events if e.kind == "healthy"}
    done = [e.id for e in events if e.kind == "wave-done"]
    starts: dict[int, int] = {}
    for event, wave in zip(applied, order, strict=True):
        starts.setdefault(wave, event.id)
    for wave, start in sorted(starts.items()):
        if wave <= 0:
            continue
        if len(done) < wave or done[wave - 1] > start:
            found.append(f"wave {wave} started before wave {wave - 1} was done")
            continue
        unproven = [c for c in plan[wave - 1] if healthy.get(c, done[wave - 1]) >= done[wave - 1]]
        if unproven:
            found.append(f"wave {wave - 1} done before {unproven} were healthy")
    if rollout.state is RolloutState.COMPLETED:
        missing = [c for c in wave_of if c not in healthy]
        if missing or len(done) != len(plan):
            found.append(f"completed with {missing} never healthy, {len(done)}/{len(plan)} waves")
    return found


def failures(fleet: Fleet, rollout: Rollout, events: list[Event]) -> list[str]:
    """Every failed cell rolled back once, to its last good state, and seen recovered."""
    found = []
    steps = fleet.store.cell_steps(rollout.id)
    rolled = _per_cell([e for e in events if e.kind == "rolled-back"])
    recovered = _per_cell([e for e in events if e.kind == "recovered"])
    for cell in sorted({str(e.cell) for e in events if e.kind == "cell-failed"}):
        step, reason = str(steps[cell][1]), steps[cell][2]
        if rolled[cell] != 1:
            found.append(f"{cell} failed and was rolled back {rolled[cell]} times")
        if step not in ROLLED_BACK:
            found.append(f"{cell} failed and ends {step} ({reason})")
        elif not recovered[cell]:
            found.append(f"{cell} rolled back, never seen recovered ({reason})")
        found += [
            f"{cell}/{row.service}: ledger applied != good after its rollback"
            for row in fleet.store.ledger_rows(cell)
            if row.applied_hash != row.good_hash
        ]
    return found


def cells(fleet: Fleet, expect: Expect, before: Before, given: set[str]) -> list[str]:
    """No cell emptied; the store, the desired file and the agent agree; every replica
    ready; each cell serves the version it should."""
    found = []
    ledger = {(r.cell, r.service): r for r in fleet.store.ledger_rows()}
    for cell in fleet.cells:
        status = fleet.status(cell)
        desired = (read_json(fleet.desired_file(cell)) or {}).get("hash")
        document = fleet.store.cell_record(cell)[0]
        if not status.get("applied") == desired == document:
            found.append(
                f"{cell}: agent {status.get('applied')}, desired {desired}, store {document}"
            )
        for service in fleet.services:
            row, held = ledger.get((cell, service)), status.get("services", {}).get(service, {})
            answer = fleet.get(cell, service)
            if before.answers[(cell, service)] is not None and answer is None:
                found.append(f"{cell}/{service} emptied: it served before, not now")
            if row is None or row.applied_hash is None or row.applied_hash != held.get("hash"):
                applied = row and row.applied_hash
                found.append(f"{cell}/{service}: ledger {applied}, agent {held.get('hash')}")
            pods = held.get("pods", [])
            if not pods or not all(p["ready"] and p["hash"] == held.get("hash") for p in pods):
                found.append(f"{cell}/{service}: not every replica ready at its hash")
            kept = service == expect.service and cell in given and cell not in expect.crashes_in
            want = expect.version if kept else before.answers[(cell, service)]
            if answer != want:
                found.append(f"{cell}/{service} answers {answer!r}, expected {want!r}")
    return found


def replicas(fleet: Fleet, expect: Expect, before: Before, given: set[str]) -> list[str]:
    """Exactly the declared replicas, each a live process its agent lists; no other
    replica process of the fleet; one agent per cell; what the release did not change
    keeps its very processes."""
    found = []
    running = replica_processes(set(fleet.cells))
    listed = fleet.replica_pids()
    for (cell, service), pids in listed.items():
        want = fleet.status(cell).get("services", {}).get(service, {}).get("replicas", 0)
        if len(pids) != int(want) or len(set(pids)) != len(pids):
            found.append(f"{cell}/{service}: {pids} listed, {want} replica(s) declared")
        if sorted(running.get((cell, service), [])) != pids:
            found.append(
                f"{cell}/{service}: processes {running.get((cell, service))}, {pids} listed"
            )
        untouched = service != expect.service or cell not in given
        if untouched and pids != before.pids[(cell, service)]:
            found.append(f"{cell}/{service} restarted, though the release did not change it")
    found += [
        f"orphaned replicas {pids} of {key}" for key, pids in running.items() if key not in listed
    ]
    agents = agent_processes(fleet.state)
    for cell in fleet.cells:
        if agents.get(cell, []) != [fleet.agent_pid(cell)]:
            found.append(f"{cell}: agents {agents.get(cell)}, pidfile {fleet.agent_pid(cell)}")
    return found


def replica_processes(cells: set[str]) -> dict[tuple[str, str], list[int]]:
    """Live replica processes of these cells (their names are unique to the bench's run),
    by the cell and service in their environment, whatever user and folder they run in."""
    found: dict[tuple[str, str], list[int]] = {}
    for pid, _, environ, _ in _processes():
        if environ.get("CELLOPS_CELL") in cells:
            key = (environ["CELLOPS_CELL"], environ.get("CELLOPS_SERVICE", "?"))
            found.setdefault(key, []).append(pid)
    return found


def agent_processes(state: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for pid, _, _, argv in _processes():
        if "cellops.backends.local.agent" in argv and "--cell-root" in argv:
            root = Path(argv[argv.index("--cell-root") + 1])
            if root.parent == state / "cells":
                found.setdefault(root.name, []).append(pid)
    return found


def _processes() -> list[tuple[int, str, dict[str, str], list[str]]]:
    """(pid, cwd, environment, argv) of every live process this user can read."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            raw = Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if argv:  # else a zombie
            environ = dict(v.split("=", 1) for v in raw.split("\0") if "=" in v)
            found.append((int(entry), cwd, environ, argv.rstrip("\0").split("\0")))
    return found


def _per_cell(events: list[Event]) -> collections.Counter[str]:
    return collections.Counter(str(e.cell) for e in events)
