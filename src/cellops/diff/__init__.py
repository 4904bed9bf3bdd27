"""Desired state vs a ledger of what was applied -> a change set.

Pure: no I/O.
"""

from cellops.diff.changeset import (
    Action,
    CellChanges,
    Change,
    ChangeSet,
    Ledger,
    diff,
    ledger_of,
)

__all__ = [
    "Action",
    "CellChanges",
    "Change",
    "ChangeSet",
    "Ledger",
    "diff",
    "ledger_of",
]
