"""A store lost beside the cells it ran is refused at start, never silently replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.backends.local.layout import cell_paths, write_json
from cellops.model.errors import StoreError
from cellops.store.lost import MARKER, open_store
from cellops.store.records import RevisionRecord
from cellops.store.sqlite import SqliteStore


def run_cells(state: Path, *cells: str) -> None:
    """What a controller leaves in the state folder after handing local cells their state."""
    store = open_store(state)
    store.record_revision(RevisionRecord("a" * 40, True, "first", [], 1.0))
    store.close()
    for cell in cells:
        write_json(cell_paths(state, cell).desired, {"services": {}})


def test_a_new_folder_gets_a_store_with_an_identity(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = open_store(state)
    try:
        ident = store.setting("store.id")
        assert ident and (state / MARKER).read_text().strip() == ident
    finally:
        store.close()
    open_store(state).close()  # and opens again


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_lost_store_beside_local_cells_is_refused(tmp_path: Path, loss: str) -> None:
    state = tmp_path / "state"
    run_cells(state, "eu-1", "us-1")
    db = state / "cellops.db"
    if loss == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")
    with pytest.raises(StoreError) as caught:
        open_store(state)
    message = str(caught.value)
    assert f"{db} is {'missing' if loss == 'deleted' else 'empty'}" in message
    assert "local cell(s) eu-1, us-1" in message and "Restore cellops.db from a backup" in message
    assert not db.exists() or db.stat().st_size == 0  # nothing was created in its place


def test_a_lost_store_of_kubernetes_cells_is_refused_by_its_marker(tmp_path: Path) -> None:
    """Kubernetes cells leave no trace in the folder: the store's identity beside it does."""
    state = tmp_path / "state"
    run_cells(state)
    (state / "cellops.db").unlink()
    with pytest.raises(StoreError, match=r"is missing, .*the marker .*store\.id"):
        open_store(state)


def test_a_store_replaced_by_an_empty_one_is_refused(tmp_path: Path) -> None:
    """`cellops status` on a lost store makes an empty one: the next start still refuses."""
    state = tmp_path / "state"
    run_cells(state, "eu-1")
    (state / "cellops.db").unlink()
    SqliteStore(state / "cellops.db").close()
    with pytest.raises(StoreError, match="knows nothing of them"):
        open_store(state)


def test_a_store_from_before_identities_is_adopted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = SqliteStore(state / "cellops.db")
    old.record_revision(RevisionRecord("b" * 40, True, "first", [], 1.0))
    old.close()
    write_json(cell_paths(state, "eu-1").desired, {"services": {}})
    open_store(state).close()
    assert (state / MARKER).exists()


def test_an_empty_store_beside_cells_with_no_marker_is_refused(tmp_path: Path) -> None:
    """A folder from before identities whose store was lost and made again empty."""
    state = tmp_path / "state"
    SqliteStore(state / "cellops.db").close()
    write_json(cell_paths(state, "eu-1").desired, {"services": {}})
    with pytest.raises(StoreError, match=r"local cell\(s\) eu-1"):
        open_store(state)
