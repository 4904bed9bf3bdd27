"""Tables shared by `status`, `up` and `demo`: cells x services, and the rollout."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cellops.backends.base import CellObservation
from cellops.controller.exposure import exposure_record
from cellops.health import Health
from cellops.store.records import CellStep, LedgerRow, Rollout
from cellops.store.sqlite import SqliteStore

_STYLE = {
    Health.HEALTHY: "green",
    Health.PROGRESSING: "yellow",
    Health.DEGRADED: "red",
    Health.MISSING: "red",
    Health.UNKNOWN: "dim",
}


Observe = Callable[[str], CellObservation]


def status_rows(store: SqliteStore, observe: Observe) -> list[dict[str, object]]:
    """One row per cell and service: what the ledger says and what the cell reports."""
    rows: list[dict[str, object]] = []
    by_cell: dict[str, list[LedgerRow]] = {}
    for row in store.ledger_rows():
        by_cell.setdefault(row.cell, []).append(row)
    for cell, ledger_rows in sorted(by_cell.items()):
        seen = observe(cell)
        for row in ledger_rows:
            observed = seen.services.get(row.service)
            health = (
                Health.UNKNOWN
                if not seen.reachable
                else (observed.health if observed else Health.MISSING)
            )
            at_applied = observed is not None and observed.hash == row.applied_hash
            rows.append(
                {
                    "cell": cell,
                    "service": row.service,
                    "revision": row.applied_rev,
                    "good": row.good_rev,
                    "health": str(
                        health if at_applied or health is not Health.HEALTHY else Health.PROGRESSING
                    ),
                    "ready": observed.ready if observed else 0,
                    "desired": observed.desired if observed else 0,
                    "reason": (observed.reason if observed else seen.reason),
                    "since": row.updated_at,
                }
            )
    return rows


def status_table(rows: list[dict[str, object]], now: float | None = None) -> Table:
    now = now or time.time()
    table = Table(
        "cell",
        "service",
        "revision",
        "health",
        "ready",
        "since",
        "reason",
        title="cells",
        title_justify="left",
    )
    for row in rows:
        health = Health(str(row["health"]))
        table.add_row(
            str(row["cell"]),
            str(row["service"]),
            str(row["revision"] or "-")[:12],
            Text(str(health), style=_STYLE[health]),
            f"{row['ready']}/{row['desired']}",
            _ago(now - float(str(row["since"]))),
            str(row["reason"] or ""),
        )
    return table


def rollout_table(rollout: Rollout | None, steps: Mapping[str, tuple[int, CellStep, str]]) -> Table:
    table = Table(
        "wave", "cell", "step", "reason", title_justify="left", title=_rollout_title(rollout)
    )
    if rollout is None:
        return table
    for index, wave in enumerate(rollout.plan.waves):
        marker = "▶ " if index == rollout.wave and rollout.active else "  "
        for i, cell in enumerate(wave.cell_names):
            _, step, reason = steps.get(cell, (0, CellStep.PENDING, ""))
            batch = f" {wave.batch}/{wave.batches}" if wave.batches > 1 else ""
            label = f"{marker}{wave.name}{batch}" + (" (canary)" if wave.canary else "")
            table.add_row(label if i == 0 else "", cell, str(step), reason)
    return table


def _rollout_title(rollout: Rollout | None) -> str:
    if rollout is None:
        return "no rollout yet"
    paused = ", paused" if rollout.paused else ""
    current = rollout.plan[rollout.wave] if rollout.wave < len(rollout.plan) else None
    batch = f" {current.batch}/{current.batches}" if current and current.batches > 1 else ""
    where = f"wave {current.name}{batch}" if current else "finishing"
    phase = f", {where} {rollout.phase}" if rollout.active else ""
    reason = f": {rollout.reason}" if rollout.reason else ""
    return (
        f"rollout #{rollout.id} of {rollout.revision[:12]}: {rollout.state}{phase}{paused}{reason}"
    )


def overview(store: SqliteStore, observe: Observe) -> Group:
    latest = store.rollouts(limit=1)
    rollout = latest[0] if latest else None
    steps = store.cell_steps(rollout.id) if rollout else {}
    return Group(
        rollout_table(rollout, steps),
        exposure_line(store),
        status_table(status_rows(store, observe)),
    )


def exposure_line(store: SqliteStore) -> Text:
    """'exposure: 14.3% of tenants (weighted) on unbaked cells: eu-canary'."""
    record = exposure_record(store)
    if record is None:
        return Text("exposure: unknown (no routing table yet)", style="dim")
    where = ", ".join(record.cells) if record.cells else "none"
    line = f"exposure: {record.ratio:.1%} of tenants (weighted) on unbaked cells: {where}"
    return Text(line, style="yellow" if record.ratio else "green")


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"
