"""The cellops error tree. Every boundary maps its own failures onto it with `raise ... from`.

    CellopsError
    ├── SourceError          the fleet repo cannot be read (missing path, unknown revision)
    ├── RevisionRejected     a revision failed validation; carries every problem found
    ├── StartupError         a command cannot start (a webhook port in use, ...)
    │   └── StoreError       the controller's state (its folder, its store) cannot be used
    └── BackendError         a cell could not be changed or read; `transient` says whether
                             trying again later may help

Pure: no I/O.
"""

from __future__ import annotations

from cellops.model.problems import Problem, Severity


class CellopsError(Exception):
    """Base of every error cellops raises on purpose."""


class SourceError(CellopsError):
    """The fleet repo, or a revision in it, cannot be read."""


class StartupError(CellopsError):
    """A command cannot start: what it needs (a port, a folder, its store) is unusable."""


class StoreError(StartupError):
    """The controller's state folder or store cannot be used: damaged, unreadable, locked,
    written by a newer cellops, lost beside running cells, or held by another controller."""


class RevisionRejected(CellopsError):
    """A revision is invalid. It is rejected whole and touches no cell."""

    def __init__(self, revision: str, problems: tuple[Problem, ...]) -> None:
        self.revision = revision
        self.problems = problems
        errors = [p for p in problems if p.severity is Severity.ERROR]
        super().__init__(f"revision {revision[:12]} rejected with {len(errors)} error(s)")


class BackendError(CellopsError):
    """A backend could not do what was asked of a cell."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
