"""Order the changes of one cell: dependencies first on apply, dependants first on delete.

Pure: no I/O.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

from cellops.diff.changeset import Action, Change


def order_changes(changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """Creates and updates in dependency order, then deletes in reverse dependency order.

    Deletes come last, as prune does in Argo CD and Flux: a removed service is taken down
    only once everything that stays has been updated. Ties are broken by name.
    """
    applies = [c for c in changes if c.action in (Action.CREATED, Action.CONFIGURED)]
    deletes = [c for c in changes if c.action is Action.DELETED]
    return (*_topological(applies), *reversed(_topological(deletes)))


def _topological(changes: list[Change]) -> list[Change]:
    by_name = {c.service: c for c in changes}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for change in sorted(changes, key=lambda c: c.service):
        sorter.add(change.service, *(d for d in change.depends_on if d in by_name))
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += ready
        sorter.done(*ready)
    return [by_name[name] for name in ordered]
