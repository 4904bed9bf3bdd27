"""Events found by what they concern, a page at a time (a part of `SqliteStore`), for the
API and `cellops events`: newest first, each page continuing below the last id seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cellops.store.records import Event
from cellops.store.tables import Tables


@dataclass(frozen=True)
class EventFilter:
    kind: tuple[str, ...] = ()  # any of these kinds
    cell: str | None = None
    service: str | None = None
    revision: str | None = None  # a prefix of the commit id
    rollout: int | None = None
    since: float | None = None  # at or after (epoch seconds)
    before: int | None = None  # ids below this one: the next page
    after: int | None = None  # ids above this one, oldest first: a follower


class EventQueries(Tables):
    def find_events(self, where: EventFilter, limit: int = 100) -> list[Event]:
        """Up to `limit` events matching `where`: newest first, or oldest first with
        `after` (what a stream sends next)."""
        clauses: list[str] = []
        args: list[Any] = []
        if where.kind:
            clauses.append(f"kind IN ({', '.join('?' * len(where.kind))})")
            args += where.kind
        for column in ("cell", "service", "rollout"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.revision:
            clauses.append("revision LIKE ? ESCAPE '\\'")
            args.append(_escape(where.revision) + "%")
        if where.since is not None:
            clauses.append("at >= ?")
            args.append(where.since)
        if where.before is not None:
            clauses.append("id < ?")
            args.append(where.before)
        if where.after is not None:
            clauses.append("id > ?")
            args.append(where.after)
        text = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if where.after is not None else "DESC"
        rows = self._all(f"SELECT * FROM events {text} ORDER BY id {order} LIMIT ?", *args, limit)
        return [Event(**dict(r)) for r in rows]

    def last_event_id(self) -> int:
        rows = self._all("SELECT max(id) AS id FROM events")
        return int(rows[0]["id"] or 0)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
