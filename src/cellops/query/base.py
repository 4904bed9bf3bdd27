"""What the read models need: the store's reads, a way to observe a cell, and times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from cellops.store.briefs import BriefRow
from cellops.store.eventquery import EventFilter
from cellops.store.records import CellStep, Event, RevisionRecord, Rollout

if TYPE_CHECKING:  # a type only: reading events or rollouts loads no spec or renderer
    from cellops.backends.base import CellObservation

Observe = Callable[[str], "CellObservation"]


class ReadStore(Protocol):
    def ledger_brief(self, cell: str | None = None) -> list[BriefRow]: ...
    def applied_cells(self) -> dict[str, str]: ...
    def cell_states(self, cell: str) -> tuple[str | None, str | None]: ...
    def revision(self, rev: str) -> RevisionRecord | None: ...
    def revisions(self, limit: int = 50) -> list[RevisionRecord]: ...
    def rollout(self, rollout_id: int) -> Rollout | None: ...
    def rollouts(self, limit: int = 20) -> list[Rollout]: ...
    def cell_steps(self, rollout_id: int) -> dict[str, tuple[int, CellStep, str]]: ...
    def setting(self, key: str) -> str | None: ...
    def find_events(self, where: EventFilter, limit: int = 100) -> list[Event]: ...


@lru_cache(maxsize=8192)  # the ledger's rows share a few times
def iso(at: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC (`2026-11-30T10:12:53.120Z`); None stays None."""
    if at is None:
        return None
    text = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_time(text: str) -> float:
    """ISO-8601 (a `Z` or an offset; naive means UTC) to epoch seconds; ValueError else."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def latest_rollout(store: ReadStore) -> Rollout | None:
    found = store.rollouts(limit=1)
    return found[0] if found else None
