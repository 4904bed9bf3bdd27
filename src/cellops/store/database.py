"""Opening the store's SQLite file: who may read it, how durable a commit is, its schema,
and one clear error when it cannot be used.

Durability: WAL with `synchronous=FULL`, so a transaction that returned is on disk and
survives an OS crash or a power loss, not only a crash of the process. The rollout's crash
safety and the Kubernetes inventory's "pending before apply" entry rest on this: with
NORMAL, WAL mode may lose the last commits on power loss, and with them the record of an
object that was then applied (an orphan) or of a wave already applied (applied twice).

Access: the state folder is the owner's alone (0700), the database and its -wal and -shm
files 0600, whatever the umask. The store holds what cells were given (environment,
manifests); Secret values are never kept (see `backends/kubernetes/secrets.py`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from cellops import __version__
from cellops.model.errors import StoreError
from cellops.store.migrations import MIGRATIONS

DB = "cellops.db"
SIDE_FILES = ("-wal", "-shm")


def open_database(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """The store at `path`, created if missing and migrated to this cellops' schema; a
    `StoreError` saying what is wrong, with which file and what to do, if it cannot be."""
    try:
        private_folder(path.parent)
        private_file(path)
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise fault(path, exc, timeout) from None
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA secure_delete=ON")  # what is deleted or replaced is overwritten
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here
        migrate(db, path)
        for suffix in SIDE_FILES:
            private_file(path.with_name(path.name + suffix), create=False)
    except BaseException as exc:
        db.close()
        if isinstance(exc, OSError | sqlite3.Error):
            raise fault(path, exc, timeout) from None
        raise
    return db


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations this database lacks, all in one transaction; refuse a database
    a newer cellops wrote (its tables may mean what this one does not know)."""
    if _version(db, path) == len(MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db, path)  # another process may have migrated meanwhile
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the old pages leave the file now
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # keep the original error
                db.execute("ROLLBACK")
        raise


def _version(db: sqlite3.Connection, path: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path} was written by a newer cellops (store schema {version}; cellops"
            f" {__version__} knows schemas 1 to {len(MIGRATIONS)}): run that cellops"
            " version or newer, or give this one another --state-dir"
        )
    return version


def statements(script: str) -> list[str]:
    """The SQL statements of `script`, each whole: a `;` inside a string literal, a
    comment or a trigger's body does not end one (`sqlite3.complete_statement` decides)."""
    found: list[str] = []
    pending = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        pending += piece if index == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                found.append(pending.strip())
            pending = ""
    if pending.strip():  # the last statement may go without its `;`
        if not sqlite3.complete_statement(pending + "\n;"):
            raise ValueError(f"an unfinished SQL statement: {pending.strip()[:60]!r}")
        found.append(pending.strip())
    return found


# -- who may read it ------------------------------------------------------------------------
def private_folder(folder: Path) -> None:
    """Create `folder` for its owner alone (0700), whatever the umask. An existing one is
    tightened if cellops made it (it holds a store) or it is empty (made for cellops); any
    other folder (`--state-dir .`) is left as its owner set it."""
    fresh = not folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if fresh or (folder / DB).exists() or not any(folder.iterdir()):
        _tighten(folder, 0o700, exact=fresh)


def private_file(path: Path, *, create: bool = True) -> None:
    """`path` readable and writable by its owner alone (0600); created empty (as SQLite
    would) if missing and `create`, so it never exists with looser rights."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    with contextlib.suppress(FileNotFoundError):  # a side file SQLite just removed
        _tighten(path, 0o600, exact=False)


def _tighten(path: Path, allowed: int, *, exact: bool) -> None:
    """Drop the rights beyond `allowed` (all of `allowed` if `exact`); only on what the
    user running cellops owns (root leaves other users' files alone)."""
    status = path.stat()
    if status.st_uid != os.geteuid():
        return
    mode = allowed if exact else status.st_mode & allowed
    if status.st_mode & 0o7777 != mode:
        os.chmod(path, mode)


# -- what to tell the user -------------------------------------------------------------------
def fault(path: Path, exc: OSError | sqlite3.Error, timeout: float) -> StoreError:
    """One line: what is wrong with the store at `path`, and what to do about it."""
    text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreError(
            f"{path} is locked by another process (waited {timeout:.0f}s): another cellops"
            " (a controller, or a command) is writing it; try again, or stop it"
            " (`cellops down`)"
        )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in lowered or "not a database" in lowered
    ):
        return StoreError(
            f"{path} is damaged ({text}): stop the controller, move the file aside and"
            ' restore it from a backup (see docs/operations.md, "Store faults")'
        )
    if isinstance(exc, PermissionError) or "readonly" in lowered or "unable to open" in lowered:
        return StoreError(
            f"cannot write the state folder {path.parent} ({text}): cellops keeps its store"
            " there; make it writable by this user, or give another --state-dir"
        )
    return StoreError(f"cannot use the store {path}: {text}")
