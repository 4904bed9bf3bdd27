"""What the DORA figures are computed from: each rollout and each cell failure, as plain
data gathered from the store (`cellops.observe.dora`). Pure: no I/O, no clock.

A rollout's *scope* is the cells of its plan, each with the services it changes there.
`restrict` narrows a rollout to the cells of one service or one cell, so one set of
rules gives the figures of the fleet, of each service and of each cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

ENDED_STATES = frozenset({"completed", "halted", "superseded", "aborted"})


@dataclass(frozen=True)
class RolloutFacts:
    """One rollout. `committed_at`: the commit's own time (the revision's time first seen
    by the controller when the store does not know it); `cells`: each planned cell and
    the services it changes; `healthy_at`: when each cell was first seen healthy at the
    rollout's revision; `failed`: cells that failed in it (rolled back or kept)."""

    id: int
    revision: str
    committed_at: float
    started_at: float
    state: str
    ended_at: float | None
    cells: Mapping[str, tuple[str, ...]]
    healthy_at: Mapping[str, float] = field(default_factory=dict)
    failed: frozenset[str] = frozenset()
    halted: bool = False

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def failure(self) -> bool:
        """A change failure: the rollout halted, or a cell of it failed (rolled back)."""
        return self.halted or bool(self.failed)

    @property
    def deployed(self) -> bool:
        """It completed and at least one of its cells took the revision for good."""
        return self.state == "completed" and any(c not in self.failed for c in self.healthy_at)

    @property
    def lead_time(self) -> float | None:
        """Commit time -> every planned cell that took the revision was healthy at it."""
        if not self.deployed:
            return None
        reached = [t for c, t in self.healthy_at.items() if c not in self.failed]
        return max(0.0, max(reached) - self.committed_at)


@dataclass(frozen=True)
class CellFailure:
    """A cell failed (`detected_at`) and was healthy again (`restored_at`: rolled back and
    healthy on its last good state, or healthy at a later revision), or not yet."""

    rollout: int
    cell: str
    services: tuple[str, ...]
    detected_at: float
    restored_at: float | None

    @property
    def time_to_restore(self) -> float | None:
        return None if self.restored_at is None else max(0.0, self.restored_at - self.detected_at)


def restrict(rollout: RolloutFacts, cells: set[str] | frozenset[str]) -> RolloutFacts | None:
    """The rollout as far as `cells` are concerned, or None when it planned none of them.
    A halt counts against the narrower scope only through its own failed cells."""
    kept = {c: s for c, s in rollout.cells.items() if c in cells}
    if not kept:
        return None
    if len(kept) == len(rollout.cells):
        return rollout
    return replace(
        rollout,
        cells=kept,
        healthy_at={c: t for c, t in rollout.healthy_at.items() if c in kept},
        failed=rollout.failed & kept.keys(),
        halted=False,
    )


def cells_of_service(rollout: RolloutFacts, service: str) -> frozenset[str]:
    return frozenset(c for c, services in rollout.cells.items() if service in services)
