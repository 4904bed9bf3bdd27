"""A store lost beside running cells is refused at start, never silently replaced.

A new, empty store knows no cell's last good state: the controller would roll every cell
again as if new, and a rollback would have nothing to return to. So when the state folder
shows that cells were run from it (local cells' folders, or the identity of the store they
were run with) and its store is missing, empty or another one, `open_store` refuses.

Adopting what the cells run instead is not safe: a cell may be holding a bad revision (a
halted rollout's canary), which would become its "last good" state; and Kubernetes cells
leave nothing in the state folder to adopt from. The way on is the operator's: restore the
store from a backup, or start afresh on purpose (docs/operations.md, "Store faults").
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cellops.model.errors import StoreError
from cellops.store.database import DB
from cellops.store.sqlite import SqliteStore

MARKER = "store.id"  # beside the store: the identity of the store first opened here
STORE_ID = "store.id"  # the same identity, in the store's settings


def open_store(state_dir: Path) -> SqliteStore:
    """The controller's store in `state_dir`, created if the folder never ran cells."""
    path = state_dir / DB
    marker = _marker(state_dir)
    if not path.exists() or path.stat().st_size == 0:
        traces = _traces(state_dir, marker)
        if traces:
            raise StoreError(
                _refusal(path, "is missing" if not path.exists() else "is empty", traces)
            )
        for suffix in ("-wal", "-shm"):  # a stale log must not be replayed into a new store
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    store = SqliteStore(path)
    try:
        _identify(store, path, marker)
    except BaseException:
        store.close()
        raise
    return store


def _identify(store: SqliteStore, path: Path, marker: str | None) -> None:
    """Check the store is the one the folder's cells were run with; give a store that has
    no identity yet (a new one, or one from before identities) its own."""
    state_dir = path.parent
    ident = store.setting(STORE_ID)
    if ident is None:
        cells = _local_cells(state_dir)
        if marker is not None or (cells and not store.revisions(1)):
            traces = _traces(state_dir, marker)
            raise StoreError(_refusal(path, "knows nothing of them", traces))
        ident = secrets.token_hex(8)
        store.set_setting(STORE_ID, ident)
    elif marker is not None and marker != ident:
        raise StoreError(
            _refusal(path, f"is store {ident}, not {marker}", [f"the marker {state_dir / MARKER}"])
        )
    if marker != ident:
        (state_dir / MARKER).write_text(ident + "\n")


def _marker(state_dir: Path) -> str | None:
    try:
        return (state_dir / MARKER).read_text().strip() or None
    except FileNotFoundError:
        return None


def _local_cells(state_dir: Path) -> list[str]:
    """Local cells the folder holds a desired state for (see backends/local/layout.py)."""
    return sorted(p.parent.name for p in (state_dir / "cells").glob("*/desired.json"))


def _traces(state_dir: Path, marker: str | None) -> list[str]:
    found = []
    if cells := _local_cells(state_dir):
        found.append(f"local cell(s) {', '.join(cells)} in {state_dir / 'cells'}")
    wal = state_dir / f"{DB}-wal"
    if wal.exists() and wal.stat().st_size > 0:
        found.append(f"a write-ahead log without its database ({wal})")
    if marker is not None:
        found.append(f"the marker {state_dir / MARKER} of the store {marker} made here before")
    return found


def _refusal(path: Path, what: str, traces: list[str]) -> str:
    return (
        f"{path} {what}, but cells may run from {path.parent}: {'; '.join(traces)}. A new"
        " store would roll every cell again and leave a rollback nothing to return to."
        f" Restore {path.name} from a backup; or, to start afresh, run `cellops down`, delete"
        f" the namespaces of Kubernetes cells if any, and remove {path.parent}"
        ' (docs/operations.md, "Store faults")'
    )
