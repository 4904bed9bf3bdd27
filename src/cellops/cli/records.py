"""What the read commands (`status`, `get`, `describe`, `events`, `history`, `rollout
status`, `diff`) open: the controller's store in its state folder, the cells as they
report themselves, and the fleet's current revision, rendered, so that cells the
controller has not applied yet are listed too.

Local cells are read from their agents' status files; the Kubernetes client is loaded
only when a Kubernetes cell is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellops.cli.common import state_dir
from cellops.cli.output import Exit, errors

if TYPE_CHECKING:
    from cellops.backends.base import CellObservation
    from cellops.backends.kubernetes.backend import KubernetesCells
    from cellops.render import DesiredFleet
    from cellops.store.eventquery import EventFilter
    from cellops.store.sqlite import SqliteStore

CURRENT = "fleet.current"  # as cellops.controller.reconcile names them
CURRENT_CELLS = "fleet.current.cells"


class Records:
    """The state folder of one fleet's controller, opened for reading."""

    def __init__(self, repo: str, state: Path | None) -> None:
        from cellops.store.sqlite import SqliteStore

        self.repo = repo
        self.folder = state_dir(repo, state)
        if not (self.folder / "cellops.db").exists():
            errors.print(
                f"✗ no controller state in {self.folder}: run `cellops up` in the fleet repo"
                " first, or name its state folder with --state-dir",
                markup=False,
            )
            raise SystemExit(Exit.SOURCE)
        self.store: SqliteStore = SqliteStore(self.folder / "cellops.db")
        self._kubernetes: KubernetesCells | None = None
        self._desired: tuple[DesiredFleet | None] | None = None

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._kubernetes is not None:
            self._kubernetes.close()
        self.store.close()

    # The read models (`cellops.query`): the same documents the API serves.
    def cells(self) -> list[dict[str, Any]]:
        from cellops.query.cells import cells

        return cells(self.store, self.observe, self.briefs() or self.desired())

    def cell(self, name: str) -> dict[str, Any] | None:
        from cellops.query.cells import cell

        return cell(self.store, self.observe, name, self.briefs() or self.desired())

    def services(self) -> list[dict[str, Any]]:
        from cellops.query.cells import services

        return services(self.cells())

    def fleet(self, cells: list[dict[str, Any]]) -> dict[str, Any]:
        from cellops.query.fleet import fleet_summary

        return fleet_summary(self.store, cells)

    def revisions(self, limit: int) -> list[dict[str, Any]]:
        from cellops.query.history import revisions

        return revisions(self.store, limit)

    def rollouts(self, limit: int) -> list[dict[str, Any]]:
        from cellops.query.rollouts import rollouts

        return rollouts(self.store, limit)

    def rollout(self, number: int | None = None) -> dict[str, Any] | None:
        from cellops.query.rollouts import rollout

        return rollout(self.store, number)

    def events(self, where: EventFilter, limit: int) -> list[dict[str, Any]]:
        """Newest first."""
        from cellops.query.history import events

        return list(events(self.store, where, limit)["events"])

    def observe(self, cell: str) -> CellObservation:
        """The cell as it reports itself now (its agent, or its cluster)."""
        if self.store.holds_objects(cell):
            if self._kubernetes is None:
                from cellops.backends.kubernetes.backend import KubernetesCells

                self._kubernetes = KubernetesCells(self.store, lambda service, tree: [])
            return self._kubernetes.observe(cell)
        from cellops.backends.local.observe import observe_cell

        return observe_cell(self.folder, cell)

    def briefs(self) -> dict[str, Mapping[str, Any]] | None:
        """The current revision's cells in brief, as the controller kept them when it
        accepted that revision (None from a controller that kept none, or none sound)."""
        from cellops.query.cells import read_briefs

        return read_briefs(self.store.setting(CURRENT_CELLS), self.store.setting(CURRENT))

    def desired(self) -> DesiredFleet | None:
        """The fleet's current revision, rendered; None when none was accepted yet or the
        repository cannot be read from here (then only applied cells are listed)."""
        if self._desired is None:
            self._desired = (self._render(),)
        return self._desired[0]

    def _render(self) -> DesiredFleet | None:
        from cellops.model.errors import CellopsError
        from cellops.pipeline import Compiler
        from cellops.source.gitcli import open_local

        current = self.store.setting(CURRENT)
        if current is None:
            return None
        for where in self._repositories():
            with suppress(CellopsError, OSError, ValueError, KeyError):
                return Compiler(open_local(where)).desired(current)
        return None

    def _repositories(self) -> list[Path]:
        """Where the fleet's commits are: the controller's mirror of a URL, the repo the
        controller was started on, the one named here."""
        from cellops.controller.process import read_record

        record = read_record(self.folder) or {}
        found = [self.folder / "mirror.git"] if (self.folder / "mirror.git").is_dir() else []
        for repo in (record.get("repo"), self.repo):
            if isinstance(repo, str) and "://" not in repo and Path(repo).is_dir():
                found.append(Path(repo))
        return found
