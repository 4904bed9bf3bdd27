"""Objects leaving a Kubernetes cell (a part of `KubernetesCells`): what cellops created
is deleted; what it adopted (there before its first apply) is released, or restored as
found when a rollback goes back past its takeover (see `takeover.py`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

from cellops import failpoint
from cellops.backends.kubernetes.api import KubeApi
from cellops.backends.kubernetes.takeover import ours, prunable, releasing, restoring
from cellops.diff.live import ObjectKey
from cellops.model.errors import BackendError
from cellops.store.base import Inventory
from cellops.store.records import InventoryItem


class Records(Inventory, Protocol):
    """The inventory, and the event log (an object released or restored is an event)."""

    def add_event(self, at: float, kind: str, message: str, *, cell: str | None = None) -> None: ...


class Prune:
    _inventory: Records
    _read_at: dict[str, float]

    def _api_at(self, cluster: str) -> KubeApi:
        raise NotImplementedError

    def _prune(
        self, cell: str, items: Iterable[InventoryItem], *, restore: bool = False
    ) -> list[tuple[InventoryItem, BackendError]]:
        """Delete in reverse apply order what cellops created; release what it adopted
        (`restore`: put it back as found). What cannot be done stays in the inventory and
        is returned with the reason. Adopted objects go last: while one is left, the cell
        still counts as having taken over (a hand-back is tried again)."""
        ordered = sorted(items, key=lambda i: (i.rank, i.key), reverse=True)
        ordered.sort(key=lambda i: i.adopted)  # stable: reverse apply order in each group
        # a namespace cellops created is not deleted while it holds objects it did not
        keep = {
            (i.cluster, ObjectKey.parse(i.key).namespace)
            for i in ordered
            if i.adopted and not prunable(json.loads(i.body))
        }
        failed: list[tuple[InventoryItem, BackendError]] = []
        for item in ordered:
            key = ObjectKey.parse(item.key)
            try:
                api = self._api_at(item.cluster)
                live = api.get(key)
                if live is not None and ours(live, cell):
                    held = (item.cluster, key.name) in keep
                    self._let_go(cell, api, item, live, restore=restore, holds_adopted=held)
            except BackendError as exc:
                what = "delete" if not item.adopted else "restore" if restore else "release"
                failed.append((item, BackendError(f"cannot {what} {key}: {exc}", exc.transient)))
                continue
            self._inventory.untrack(cell, item.key, item.cluster)
            self._read_at.pop(cell, None)
        return failed

    def _let_go(
        self,
        cell: str,
        api: KubeApi,
        item: InventoryItem,
        live: dict[str, Any],
        *,
        restore: bool,
        holds_adopted: bool,
    ) -> None:
        """One object leaves the cell: deleted, released, or restored as found."""
        key = ObjectKey.parse(item.key)
        if item.adopted and not prunable(json.loads(item.body)):
            found = json.loads(item.found or "{}")
            if restore:
                api.merge(key, restoring(found, live))
                self._event(cell, "restored", f"{key}: taken over, now restored as it was found")
            else:
                api.merge(key, releasing(found, live))
                self._event(
                    cell,
                    "released",
                    f"{key} left the fleet; not deleted, since cellops did not create it:"
                    " its labels and annotations as found, the rest as cellops last applied it",
                )
        elif key.kind == "Namespace" and holds_adopted:
            self._event(cell, "kept", f"{key} not deleted: it holds objects cellops did not create")
        else:
            api.delete(key)
            failpoint.hit("prune.k8s")

    def _event(self, cell: str, kind: str, message: str) -> None:
        self._inventory.add_event(time.time(), kind, f"{cell}: {message}", cell=cell)


def prune_error(errors: list[BackendError]) -> BackendError:
    """One error for several failed deletes: transient only if trying again may help all."""
    return BackendError("; ".join(map(str, errors)), all(e.transient for e in errors))
