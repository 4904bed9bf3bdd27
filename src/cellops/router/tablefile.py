"""The routing table on disk: written atomically (temp file, fsync, rename), read strictly.

Readers never see half a table: a rename replaces the whole file at once. The version
only grows; publishing the same placement again keeps the version.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cellops.atomic import write_atomic
from cellops.tenancy.table import RoutingTable, TableError, parse_table

MAX_TABLE_BYTES = 256 << 20


def read_table(path: Path) -> RoutingTable:
    """The table at `path`; TableError (naming the file) when it is missing or malformed."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TABLE_BYTES + 1)
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_TABLE_BYTES:
        raise TableError(f"{path}: larger than {MAX_TABLE_BYTES} bytes")
    try:
        return parse_table(data)
    except TableError as exc:
        raise TableError(f"{path}: {exc}") from None


def write_table(path: Path, table: RoutingTable) -> None:
    write_atomic(path, table.to_json(), durable=True)


def publish(path: Path, table: RoutingTable) -> RoutingTable:
    """Write `table` as the next version after the one on disk (unchanged: nothing)."""
    try:
        current: RoutingTable | None = read_table(path)
    except TableError:
        current = None
    if current is not None:
        if replace(table, version=current.version) == current:
            return current
        table = replace(table, version=max(table.version, current.version + 1))
    write_table(path, table)
    return table
