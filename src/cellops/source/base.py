"""The port every fleet source implements: read the files of one revision."""

from __future__ import annotations

from typing import Protocol

from cellops.model.snapshot import Snapshot


class SnapshotSource(Protocol):
    def refresh(self) -> None:
        """Bring in new commits (fetch a remote); raises SourceError if it cannot."""
        ...

    def resolve(self, rev: str) -> str:
        """The immutable id (commit id) that `rev` names; raises SourceError if none."""
        ...

    def parent(self, rev: str) -> str | None:
        """The first parent of `rev`, or None for a root commit."""
        ...

    def snapshot(self, rev: str) -> Snapshot:
        """The fleet files at `rev`; raises SourceError if it cannot be read."""
        ...
