"""The store's file: its durability, its schema (refused when newer, migrated statement by
statement), who may read it, and one clear error for each way it cannot be used."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cellops.model.errors import StoreError
from cellops.store.database import statements
from cellops.store.migrations import MIGRATIONS
from cellops.store.sqlite import SqliteStore


def pragma(store: SqliteStore, name: str) -> object:
    return store._db.execute(f"PRAGMA {name}").fetchone()[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


# -- durability -------------------------------------------------------------------------------
def test_a_commit_is_on_disk_when_it_returns(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: a power loss keeps every transaction that returned (with
    NORMAL it may lose the last ones, and with them an inventory's pending entry)."""
    store = SqliteStore(tmp_path / "cellops.db")
    try:
        assert pragma(store, "journal_mode") == "wal"
        assert pragma(store, "synchronous") == 2  # FULL
        assert pragma(store, "secure_delete") == 1  # what is replaced is overwritten
    finally:
        store.close()


# -- schema -----------------------------------------------------------------------------------
def set_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


def test_a_store_from_a_newer_cellops_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    SqliteStore(path).close()
    newer = len(MIGRATIONS) + 3
    set_version(path, newer)
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    message = str(caught.value)
    assert str(path) in message and "newer cellops" in message
    assert f"store schema {newer}" in message and f"1 to {len(MIGRATIONS)}" in message
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == newer
    db.close()


TRICKY = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL); -- a comment; with a ;
INSERT INTO notes (text) VALUES ('one; two');
CREATE TRIGGER stamp AFTER INSERT ON notes BEGIN
    UPDATE notes SET text = NEW.text || ';' WHERE id = NEW.id;
END;
"""


@pytest.fixture
def tricky_migration() -> Iterator[None]:
    MIGRATIONS.append(TRICKY)
    try:
        yield
    finally:
        MIGRATIONS.remove(TRICKY)


def test_migrations_run_statement_by_statement(tmp_path: Path, tricky_migration: None) -> None:
    """A `;` in a string literal, a comment or a trigger's body does not end a statement."""
    store = SqliteStore(tmp_path / "cellops.db")
    try:
        assert store.schema_version == len(MIGRATIONS)
        store._db.execute("INSERT INTO notes (text) VALUES ('three')")
        rows = [r[0] for r in store._db.execute("SELECT text FROM notes ORDER BY id")]
        assert rows == ["one; two", "three;"]  # the literal whole, the trigger ran
    finally:
        store.close()


def test_statements_are_split_where_sqlite_would_end_them() -> None:
    assert statements("SELECT 1; SELECT ';';\n-- c;\nSELECT 2") == [
        "SELECT 1;",
        "SELECT ';';",
        "-- c;\nSELECT 2",
    ]
    with pytest.raises(ValueError, match="unfinished"):
        statements("SELECT 'open;")


# -- who may read it ----------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_the_state_folder_is_the_owners_alone_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    state = tmp_path / "state"
    with umask(mask):
        store = SqliteStore(state / "cellops.db")
        store.set_setting("k", "v")
    try:
        assert mode(state) == 0o700
        for name in ("cellops.db", "cellops.db-wal", "cellops.db-shm"):
            assert mode(state / name) == 0o600, name
    finally:
        store.close()


def test_a_looser_existing_state_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with umask(0):
        SqliteStore(state / "cellops.db").close()
        state.chmod(0o755)
        (state / "cellops.db").chmod(0o644)
        store = SqliteStore(state / "cellops.db")
    try:
        assert mode(state) == 0o700 and mode(state / "cellops.db") == 0o600
        assert mode(state / "cellops.db-wal") == 0o600
    finally:
        store.close()


def test_a_folder_that_is_not_cellops_own_is_left_as_it_is(tmp_path: Path) -> None:
    """`--state-dir .` in a folder of the user's: the store is private, the folder theirs."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's")
    folder.chmod(0o755)
    SqliteStore(folder / "cellops.db").close()
    assert mode(folder) == 0o755 and mode(folder / "cellops.db") == 0o600


# -- faults: one clear error, never a traceback -------------------------------------------------
def make_store(path: Path, events: int = 0) -> None:
    store = SqliteStore(path)
    for index in range(events):
        store.add_event(float(index), "note", "x" * 200)
    store.close()


def test_a_damaged_header_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    make_store(path)
    with open(path, "r+b") as handle:
        handle.write(b"garbage, not SQLite" * 6)
    with pytest.raises(StoreError, match=r"cellops\.db is damaged \(file is not a database\)"):
        SqliteStore(path)


def test_a_truncated_store_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    make_store(path, events=400)  # many pages
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(StoreError, match=r"is damaged \(database disk image is malformed\)"):
        SqliteStore(path)


def test_a_store_locked_beyond_the_timeout_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    make_store(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"is locked by another process \(waited 0s\)"):
            SqliteStore(path, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_state_folder_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match=r"cannot use the store .*state/cellops\.db"):
        SqliteStore(tmp_path / "state" / "cellops.db")


def test_two_processes_opening_a_new_store_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    opened: list[SqliteStore] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(SqliteStore(path))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and all(s.schema_version == len(MIGRATIONS) for s in opened)
    for store in opened:
        store.close()


def older_store(path: Path, version: int) -> sqlite3.Connection:
    """A store as a cellops that knew only the first `version` migrations wrote it."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    return db


def test_an_older_inventory_is_recorded_as_created(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    origins = next(i for i, script in enumerate(MIGRATIONS) if "origin" in script)
    db = older_store(path, origins)
    db.execute("INSERT INTO inventory VALUES ('eu-1', 'v1 Service ns api', 3, 'h', '{}', '{}')")
    db.close()
    store = SqliteStore(path)
    try:
        [item] = store.inventory("eu-1")
        assert (item.origin, item.found, item.adopted) == ("created", None, False)
    finally:
        store.close()


def test_secret_values_kept_by_an_older_cellops_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "cellops.db"
    scrub = next(i for i, script in enumerate(MIGRATIONS) if "v1 Secret" in script)
    db = older_store(path, scrub)
    secret = (
        '{"apiVersion":"v1","data":{"k":"aHVudGVyMg=="},"kind":"Secret","stringData":{"s":"x"}}'
    )
    db.execute(
        "INSERT INTO inventory VALUES ('eu-1', 'v1 Secret ns api-key', 5, 'h', ?, '{}')", (secret,)
    )
    db.close()
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    assert (
        db.execute("SELECT body FROM inventory").fetchone()[0]
        == '{"apiVersion":"v1","kind":"Secret"}'
    )
    db.close()
    assert b"aHVudGVyMg==" not in path.read_bytes()  # not left behind in a free page either


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_state_folder_is_reported(tmp_path: Path) -> None:
    state = tmp_path / "state"
    make_store(state / "cellops.db")
    state.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=r"cannot write the state folder .*state"):
            SqliteStore(state / "cellops.db")
    finally:
        state.chmod(0o700)
