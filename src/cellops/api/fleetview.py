"""Every cell's view (`query.cells`), built again only where something changed.

A fleet of 1,000 cells x 50 services is 50,000 ledger rows and service views: about
0.3 s of one core to build in full, during which every request in the process waits on
the interpreter lock. Each rebuild of the snapshot used to do all of it, and to make the
JSON of every answer again. Here the store is read again only when something was
committed since (`version()`), and a cell's view (and its JSON, made once with orjson)
is made again only when its ledger rows, its place in the current revision, its
rollout step or what its agent reports changed; the build says whether anything did,
so answers made from the last one stay valid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cellops.backends.base import CellObservation
from cellops.query.base import Observe, latest_rollout
from cellops.query.cells import rows_by_cell, seen_view
from cellops.render import DesiredCell, DesiredFleet
from cellops.store.briefs import BriefRow
from cellops.store.records import CellStep
from cellops.store.sqlite import SqliteStore

Step = tuple[int, tuple[int, CellStep, str]] | None


def dumps(data: object) -> bytes:
    """Compact JSON, as `json.dumps(data, separators=(",", ":"))` writes it, ten times
    faster on a page of cells."""
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


@dataclass(frozen=True)
class Inputs:
    rows: list[BriefRow]
    target: DesiredCell | None
    applied: str | None
    seen: CellObservation | None
    step: Step

    def same(self, other: Inputs) -> bool:
        return (
            _same(self.target, other.target)
            and _same(self.seen, other.seen)
            and self.step == other.step
            and self.applied == other.applied
            and self.rows == other.rows
        )


@dataclass(frozen=True)
class CellView:
    inputs: Inputs
    view: dict[str, Any]
    json: bytes  # `view` as JSON


class FleetCells:
    """`build()`: every cell's view by name, and whether any changed since the last."""

    def __init__(
        self,
        store: SqliteStore,
        observe: Observe | None,
        desired: Callable[[], DesiredFleet | None],
    ) -> None:
        self._store, self._observe, self._desired = store, observe, desired
        self._version: object = None
        self._rows: dict[str, list[BriefRow]] = {}
        self._applied: dict[str, str] = {}
        self._steps: dict[str, tuple[int, tuple[int, CellStep, str]]] = {}
        self._kept: dict[str, CellView] = {}

    def build(self) -> tuple[list[CellView], bool]:
        self._read()
        desired = self._desired()
        wanted = desired.cells if desired is not None else {}
        views, changed = [], False
        for name in sorted(set(self._rows) | set(wanted)):
            rows = self._rows.get(name, [])
            seen = self._observe(name) if self._observe is not None and rows else None
            applied, step = self._applied.get(name), self._steps.get(name)
            given = Inputs(rows, wanted.get(name), applied, seen, step)
            kept = self._kept.get(name)
            if kept is None or not kept.inputs.same(given):
                view = seen_view(name, rows, given.target, given.applied, seen, step=given.step)
                kept = CellView(given, view, dumps(view))
                changed = True
            views.append(kept)
        changed = changed or len(views) != len(self._kept)
        self._kept = {v.view["name"]: v for v in views}
        return views, changed

    def _read(self) -> None:
        """The ledger, the cells as applied and the latest rollout's steps, when the store
        changed since they were read."""
        version = self._store.version()
        if version == self._version:
            return
        self._rows = rows_by_cell(self._store)
        self._applied = self._store.applied_cells()
        latest = latest_rollout(self._store)
        steps = self._store.cell_steps(latest.id) if latest else {}
        self._steps = {name: (latest.id, step) for name, step in steps.items()} if latest else {}
        self._version = version


def _same(a: object, b: object) -> bool:
    return a is b or a == b
