"""The DORA figures of a fleet from its store: gather each rollout's and each cell
failure's facts (`cellops.dora.facts`), then compute them (`cellops.dora.figures`).

`dora_report(store, since, now)` is what `cellops dora` prints and the API serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from cellops.dora.facts import CellFailure, RolloutFacts
from cellops.dora.figures import Window, report
from cellops.dora.scorecard import Record, cellops_deploys
from cellops.store.base import Store
from cellops.store.records import Event, Rollout, RolloutState

MANY = 1_000_000  # every record: the store keeps no more than a fleet's history


def dora_report(store: Store, since: float, now: float) -> dict[str, object]:
    """The four figures for the fleet, each service and each cell, over [since, now);
    times in seconds, the window's ends also as ISO-8601 (UTC)."""
    rollouts, failures = gather(store, since)
    window = Window(since, now)
    out = report(rollouts, failures, window)
    out["window"] = {"from": iso(since), "to": iso(now), "days": round(window.days, 4)}
    return out


def gather(store: Store, since: float) -> tuple[list[RolloutFacts], list[CellFailure]]:
    """The facts of every rollout that ended at or after `since` (or still runs), and of
    every cell failure detected since then."""
    healthy = _by_rollout(store.events(limit=MANY, kind="healthy"))
    rollouts = [
        _rollout_facts(store, r, healthy.get(r.id, []))
        for r in store.rollouts(limit=MANY)
        if r.active or r.updated_at >= since
    ]
    planned = {r.id: r.cells for r in rollouts}
    failures = _failures(store, since, planned, healthy)
    return rollouts, failures


def _rollout_facts(store: Store, rollout: Rollout, healthy: list[Event]) -> RolloutFacts:
    record = store.revision(rollout.revision)
    committed = record.committed_at if record and record.committed_at else None
    cells = {
        c.cell: tuple(service for service, _ in c.changes)
        for wave in rollout.plan.waves
        for c in wave.cells
    }
    first: dict[str, float] = {}
    for event in healthy:
        if event.cell is not None and event.cell not in first:
            first[event.cell] = event.at
    steps = store.cell_steps(rollout.id)
    return RolloutFacts(
        id=rollout.id,
        revision=rollout.revision,
        committed_at=committed or (record.seen_at if record else rollout.created_at),
        started_at=rollout.created_at,
        state=str(rollout.state),
        ended_at=None if rollout.active else rollout.updated_at,
        cells=cells,
        healthy_at=first,
        failed=frozenset(c for c, (_, step, _) in steps.items() if step.failed),
        halted=rollout.state is RolloutState.HALTED,
    )


def _failures(
    store: Store,
    since: float,
    planned: Mapping[int, Mapping[str, tuple[str, ...]]],
    healthy: dict[int, list[Event]],
) -> list[CellFailure]:
    """Each cell's first failure in a rollout, and when it was healthy again: recovered
    on its last good state, or healthy at a later rollout's revision."""
    back = store.events(limit=MANY, kind="recovered")
    back += [e for events in healthy.values() for e in events]
    out: dict[tuple[int, str], CellFailure] = {}
    for event in store.events(limit=MANY, kind="cell-failed"):
        if event.at < since or event.cell is None or event.rollout is None:
            continue
        key = (event.rollout, event.cell)
        if key in out:
            continue
        restored = min(
            (e.at for e in back if e.cell == event.cell and e.at >= event.at and _after(e, event)),
            default=None,
        )
        services = planned.get(event.rollout, {}).get(event.cell, ())
        out[key] = CellFailure(event.rollout, event.cell, services, event.at, restored)
    return list(out.values())


def _after(candidate: Event, failure: Event) -> bool:
    """A `recovered` of the same rollout, or `healthy` in a later one."""
    if candidate.kind == "recovered":
        return candidate.rollout == failure.rollout
    return (candidate.rollout or 0) > (failure.rollout or 0)


def _by_rollout(events: Iterable[Event]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for event in events:
        if event.rollout is not None:
            out.setdefault(event.rollout, []).append(event)
    return out


def iso(at: float) -> str:
    """ISO-8601 UTC to the second: 2026-11-30T10:46:22Z."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


ESCALATIONS = {  # events that needed a human
    "rollout-halted": "halted rollouts",
    "rollback-failed": "failed rollbacks",
    "rollback-impossible": "rollbacks impossible",
    "rollout-abort": "manual aborts",
}


def cellops_record(store: Store, since: float, now: float) -> Record:
    """cellops' own record over [since, now), for the scorecard."""
    window = Window(since, now)
    rollouts, failures = gather(store, since)
    ended = [r for r in rollouts if r.ended_at in window]
    kinds = {
        label: sum(1 for e in store.events(limit=MANY, kind=kind) if e.at in window)
        for kind, label in ESCALATIONS.items()
    }
    return Record(
        deploys=cellops_deploys(ended),
        incidents=[f.services for f in failures if f.detected_at in window],
        escalations=sum(kinds.values()),
        span=now - since,
        escalation_kinds=kinds,
    )
