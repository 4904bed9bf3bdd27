"""Revisions, accepted and rejected (with their problems as `file:line: field: message`),
and the events, filtered and a page at a time."""

from __future__ import annotations

from typing import Any

from cellops.query.base import ReadStore, iso
from cellops.store.eventquery import EventFilter
from cellops.store.records import Event, RevisionRecord, Rollout


def problem_line(problem: dict[str, object]) -> str:
    """A stored problem as the CLI prints it: `file:line: field: message`."""
    where = str(problem.get("file") or "")
    if where and problem.get("line"):
        where += f":{problem['line']}"
    parts = [p for p in (where, str(problem.get("field") or "")) if p]
    return ": ".join([*parts, str(problem.get("message", ""))])


def revision_view(record: RevisionRecord, rollout: Rollout | None = None) -> dict[str, Any]:
    return {
        "revision": record.id,
        "accepted": record.accepted,
        "seen_at": iso(record.seen_at),
        "message": record.message,
        "problems": [{**p, "text": problem_line(p)} for p in record.problems],
        "rollout": None
        if rollout is None
        else {"id": rollout.id, "state": str(rollout.state), "reason": rollout.reason},
    }


def revisions(store: ReadStore, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first, each with the latest rollout of it."""
    rollouts = {r.revision: r for r in reversed(store.rollouts(limit * 2))}
    return [revision_view(r, rollouts.get(r.id)) for r in store.revisions(limit)]


def event_view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "message": event.message,
        "cell": event.cell,
        "service": event.service,
        "revision": event.revision,
        "rollout": event.rollout,
    }


def events(store: ReadStore, where: EventFilter, limit: int = 100) -> dict[str, Any]:
    """A page of events, newest first; `next` is the `before` of the following page
    (None on the last one)."""
    limit = max(1, min(limit, 1000))
    found = store.find_events(where, limit + 1)
    page = found[:limit]
    more = len(found) > limit and where.after is None
    return {"events": [event_view(e) for e in page], "next": page[-1].id if more else None}
