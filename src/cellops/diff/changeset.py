"""Compare the desired fleet with the ledger (the hash last applied per cell and service).

Entries use past-tense actions, as in flux's change sets: what applying the plan will
have done. Only cells present in the desired fleet carry labels; a cell that left the fleet
keeps no labels and is planned by percentage waves.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cellops.render.desired import DesiredFleet
from cellops.spec.cell import CellState


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class LedgerEntry:
    """What was last applied for one service in one cell."""

    hash: str
    depends_on: tuple[str, ...] = ()


Ledger = Mapping[str, Mapping[str, LedgerEntry]]  # cell -> service -> entry


@dataclass(frozen=True)
class Change:
    cell: str
    service: str
    action: Action
    from_hash: str | None
    to_hash: str | None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellChanges:
    """The changes of one cell. `changes` holds only entries that are not unchanged."""

    cell: str
    labels: Mapping[str, str]
    state: CellState
    changes: tuple[Change, ...]
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeSet:
    revision: str
    cells: tuple[CellChanges, ...] = field(default=())

    @property
    def affected(self) -> tuple[CellChanges, ...]:
        return tuple(c for c in self.cells if c.changes)

    def entries(self, include_unchanged: bool = False) -> list[Change]:
        out = [change for cell in self.cells for change in cell.changes]
        if include_unchanged:
            out += [
                Change(c.cell, s, Action.UNCHANGED, None, None)
                for c in self.cells
                for s in c.unchanged
            ]
        return out

    def count(self, action: Action) -> int:
        if action is Action.UNCHANGED:
            return sum(len(c.unchanged) for c in self.cells)
        return sum(1 for c in self.cells for ch in c.changes if ch.action is action)


def ledger_of(desired: DesiredFleet) -> dict[str, dict[str, LedgerEntry]]:
    """The ledger a fleet would have once `desired` is fully applied."""
    return {
        cell.name: {
            name: LedgerEntry(service.hash, service.depends_on)
            for name, service in cell.services.items()
        }
        for cell in desired.cells.values()
    }


def diff(desired: DesiredFleet, ledger: Ledger) -> ChangeSet:
    cells = []
    for name in sorted(set(desired.cells) | set(ledger)):
        applied = ledger.get(name, {})
        cell = desired.cells.get(name)
        wanted = cell.services if cell is not None else {}
        changes, unchanged = [], []
        for service in sorted(set(wanted) | set(applied)):
            was, now = applied.get(service), wanted.get(service)
            if now is None:
                assert was is not None
                changes.append(
                    Change(name, service, Action.DELETED, was.hash, None, was.depends_on)
                )
            elif was is None:
                changes.append(
                    Change(name, service, Action.CREATED, None, now.hash, now.depends_on)
                )
            elif was.hash != now.hash:
                changes.append(
                    Change(name, service, Action.CONFIGURED, was.hash, now.hash, now.depends_on)
                )
            else:
                unchanged.append(service)
        cells.append(
            CellChanges(
                cell=name,
                labels=cell.labels if cell is not None else {},
                state=cell.state if cell is not None else CellState.ACTIVE,
                changes=tuple(changes),
                unchanged=tuple(unchanged),
            )
        )
    return ChangeSet(desired.revision, tuple(cells))
