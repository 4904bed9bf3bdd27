"""The API's snapshot of every cell is built again only where something changed: a
rebuild that finds nothing new keeps its number (the answers made from it stay valid),
and a change to one cell makes only that cell's view and JSON again."""

from __future__ import annotations

import json
from pathlib import Path

from cellops.api.fleetview import FleetCells
from cellops.api.snapshot import Snapshot
from cellops.backends.base import CellObservation
from cellops.query import cells as cell_queries
from cellops.store.sqlite import SqliteStore
from tests.apikit import GOOD, healthy, populate


def _snapshot(store: SqliteStore, seen: dict[str, CellObservation]) -> Snapshot:
    def observe(cell: str) -> CellObservation:
        return seen.get(cell) or healthy(cell)

    return Snapshot(FleetCells(store, observe, lambda: None).build)


def test_a_rebuild_that_finds_nothing_new_keeps_the_views_and_their_number(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    populate(store, 4, 2)
    snapshot = _snapshot(store, {})
    first = snapshot.rebuild()
    again = snapshot.rebuild()
    assert again.number == first.number
    assert again is first  # nothing made again: not the views, not their JSON


def test_a_change_to_one_cell_makes_only_that_cell_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    populate(store, 4, 2)
    seen: dict[str, CellObservation] = {}
    snapshot = _snapshot(store, seen)
    first = snapshot.rebuild()

    seen["cell-0002"] = CellObservation("cell-0002", False, reason="agent not answering")
    second = snapshot.rebuild()
    assert second.number == first.number + 1
    assert second.cells[2]["reachable"] is False
    assert [second.cells[i] is first.cells[i] for i in range(4)] == [True, True, False, True]

    store.set_healthy("cell-0001", "svc-00", GOOD, 1000.0)  # the store changed
    third = snapshot.rebuild()
    assert third.number == second.number + 1
    assert third.cells[1]["services"][0]["since"] == "1970-01-01T00:16:40.000Z"
    assert third.cells[0] is first.cells[0]


def test_the_views_and_the_page_are_what_the_read_models_make(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    populate(store, 5, 3)
    view = _snapshot(store, {}).rebuild()
    assert view.cells == cell_queries.cells(store, healthy)
    page = json.loads(view.page([1, 3], total=5))
    assert page == {"total": 5, "cells": [view.cells[1], view.cells[3]]}
    assert view.page([], total=0) == b'{"total":0,"cells":[]}'
