"""What the parts of the SQLite store (`LedgerTables`, `RolloutTables`) need of it: the
connection and its three primitives, implemented by `SqliteStore`."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any


class Tables:
    _db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        raise NotImplementedError

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        raise NotImplementedError
