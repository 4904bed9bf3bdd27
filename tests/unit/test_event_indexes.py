"""Events filtered by cell, service or rollout are read from an index, newest first: a
store with years of events answers a cell's page without reading every event."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.store.sqlite import SqliteStore


@pytest.mark.parametrize("column", ["cell", "service", "rollout"])
def test_a_filtered_page_of_events_uses_an_index(tmp_path: Path, column: str) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    try:
        plan = store._all(  # the query find_events makes for this filter
            f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {column} = ? ORDER BY id DESC LIMIT ?",
            "x",
            100,
        )
        steps = " ".join(str(row["detail"]) for row in plan)
    finally:
        store.close()
    assert f"USING INDEX events_{column}" in steps, steps
    assert "TEMP B-TREE" not in steps, steps  # no sort of every match
