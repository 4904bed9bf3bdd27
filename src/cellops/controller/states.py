"""What each cell was given and what was last good there, read from the store.

The ledger keeps every service as it was rendered, and every cell as it was applied and
as it was last good, so a rollback and supervision work after a force-push and `git gc`
removed the commits the ledger names. Ledgers written before those columns existed fall
back to rendering the revision from Git.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cellops.model.errors import CellopsError
from cellops.render import DesiredCell, DesiredFleet, DesiredService
from cellops.render.stored import StoredStates, cell_json, service_json
from cellops.store.base import Store
from cellops.store.records import LedgerRow


class CellStates:
    def __init__(self, store: Store, desired: Callable[[str], DesiredFleet]) -> None:
        self.store = store
        self.desired = desired
        self.cache = StoredStates()
        self._texts: dict[int, tuple[object, str]] = {}  # id -> (object kept alive, JSON)

    # -- writing --------------------------------------------------------------------------
    def service_text(self, service: DesiredService) -> str:
        """JSON of a rendered service; services are shared by cells with equal inputs, so
        each is serialised once."""
        known = self._texts.get(id(service))
        if known is not None and known[0] is service:
            return known[1]
        if len(self._texts) > 65536:
            self._texts.clear()
        text = service_json(service)
        self._texts[id(service)] = (service, text)
        return text

    def cell_text(self, cell: DesiredCell) -> str:
        known = self._texts.get(id(cell))
        if known is not None and known[0] is cell:
            return known[1]
        text = cell_json(cell)
        self._texts[id(cell)] = (cell, text)
        return text

    # -- reading --------------------------------------------------------------------------
    def applied(self, cell: str, rows: list[LedgerRow] | None = None) -> DesiredCell | None:
        """The cell as it was last given its services, with those services; None when
        nothing is applied there (or it cannot be known)."""
        rows = self.store.ledger_rows(cell) if rows is None else rows
        services = {
            r.service: s
            for r in rows
            if r.applied_hash is not None
            and (s := self._service(r.applied_spec, r.applied_rev, cell, r.service)) is not None
        }
        if not services:
            return None
        body, _ = self.store.cell_states(cell)
        return self._cell(body, cell, services, [r.applied_rev for r in rows])

    def good(self, cell: str) -> DesiredCell | None:
        """The cell's last good state, services new since then left out; None when no
        good state is known (a rollback then has nothing to go back to)."""
        rows = self.store.ledger_rows(cell)
        services = {
            r.service: s
            for r in rows
            if r.good_hash is not None
            and (s := self._service(r.good_spec, r.good_rev, cell, r.service)) is not None
        }
        if not services:
            return None
        _, good = self.store.cell_states(cell)
        # a ledger from before the store kept cells: the good revision from Git (never the
        # cell as last applied: that is the failing revision's, its address or cluster)
        return self._cell(good, cell, services, [r.good_rev for r in rows])

    def _service(
        self, text: str | None, rev: str | None, cell: str, name: str
    ) -> DesiredService | None:
        if text is not None:
            return self.cache.service(text)
        found = self._from_git(rev, cell)
        return None if found is None else found.services.get(name)

    def _cell(
        self,
        body: str | None,
        cell: str,
        services: Mapping[str, DesiredService],
        revs: list[str | None],
    ) -> DesiredCell | None:
        if body is not None:
            return self.cache.cell(body, services)
        for rev in revs:
            found = self._from_git(rev, cell)
            if found is not None:
                return DesiredCell(found.name, found.labels, found.state, found.spec, services)
        return None

    def _from_git(self, rev: str | None, cell: str) -> DesiredCell | None:
        if rev is None:
            return None
        try:
            return self.desired(rev).cells.get(cell)
        except CellopsError:
            return None  # the commit is gone (force-push, gc) and the store predates specs
