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
from types import MappingProxyType
from typing import Protocol

from cellops.render.desired import DesiredFleet
from cellops.spec.cell import CellState


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


class Applied(Protocol):
    """What the ledger knows of one service in one cell: the hash last applied, and what
    it depended on then (to order its deletion). A `DesiredService` is one."""

    @property
    def hash(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...


Ledger = Mapping[str, Mapping[str, Applied]]  # cell -> service -> what was applied


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


def ledger_of(desired: DesiredFleet) -> Ledger:
    """The ledger a fleet would have once `desired` is fully applied (a view, no copies)."""
    return {name: cell.services for name, cell in desired.cells.items()}


def _change(cell: str, service: str, was: Applied | None, now: Applied | None) -> Change:
    if now is None:
        assert was is not None
        return Change(cell, service, Action.DELETED, was.hash, None, was.depends_on)
    if was is None:
        return Change(cell, service, Action.CREATED, None, now.hash, now.depends_on)
    return Change(cell, service, Action.CONFIGURED, was.hash, now.hash, now.depends_on)


def diff(desired: DesiredFleet, ledger: Ledger) -> ChangeSet:
    # Cells usually share their mappings of services (render gives one to each class of
    # alike cells, and a ledger of a rendered fleet is a view of it): compare each pair of
    # mappings once. The pair is kept with its result, so neither id is reused meanwhile.
    compared: dict[tuple[int, int], _Compared] = {}
    cells = []
    for name in sorted(desired.cells.keys() | ledger.keys()):
        applied = ledger.get(name, _NOTHING)
        cell = desired.cells.get(name)
        wanted = cell.services if cell is not None else _NOTHING
        found = compared.get((id(wanted), id(applied)))
        if found is None:
            found = compared[(id(wanted), id(applied))] = _compare(wanted, applied)
        cells.append(
            CellChanges(
                cell=name,
                labels=cell.labels if cell is not None else {},
                state=cell.state if cell is not None else CellState.ACTIVE,
                changes=tuple(
                    _change(name, service, applied.get(service), wanted.get(service))
                    for service in found.changed
                ),
                unchanged=found.unchanged,
            )
        )
    return ChangeSet(desired.revision, tuple(cells))


_NOTHING: Mapping[str, Applied] = MappingProxyType({})


@dataclass(frozen=True)
class _Compared:
    wanted: Mapping[str, Applied]
    applied: Mapping[str, Applied]
    unchanged: tuple[str, ...]
    changed: tuple[str, ...]  # created, configured or deleted


def _compare(wanted: Mapping[str, Applied], applied: Mapping[str, Applied]) -> _Compared:
    unchanged = sorted(
        s
        for s, now in wanted.items()
        if (was := applied.get(s)) is not None and was.hash == now.hash
    )
    changed = sorted((wanted.keys() | applied.keys()).difference(unchanged))
    return _Compared(wanted, applied, tuple(unchanged), tuple(changed))
