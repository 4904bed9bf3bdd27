"""Order the changes of one cell: dependencies first on apply, dependants first on delete.

Pure: no I/O.
"""

from __future__ import annotations

from functools import cache
from graphlib import TopologicalSorter

from cellops.diff.changeset import Action, Change


def order_changes(changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """Creates and updates in dependency order, then deletes in reverse dependency order.

    Deletes come last, as prune does in Argo CD and Flux: a removed service is taken down
    only once everything that stays has been updated. Ties are broken by name.
    """
    # Thousands of cells usually share a few shapes of change: order each shape once.
    shape = tuple((c.service, c.action is Action.DELETED, c.depends_on) for c in changes)
    return tuple(changes[i] for i in _order(shape))


@cache
def _order(shape: tuple[tuple[str, bool, tuple[str, ...]], ...]) -> tuple[int, ...]:
    applies = [i for i, (_, deleted, _) in enumerate(shape) if not deleted]
    deletes = [i for i, (_, deleted, _) in enumerate(shape) if deleted]
    return (*_topological(shape, applies), *reversed(_topological(shape, deletes)))


def _topological(
    shape: tuple[tuple[str, bool, tuple[str, ...]], ...], members: list[int]
) -> list[int]:
    by_name = {shape[i][0]: i for i in members}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name in sorted(by_name):
        sorter.add(name, *(d for d in shape[by_name[name]][2] if d in by_name))
    sorter.prepare()
    ordered: list[int] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += [by_name[name] for name in ready]
        sorter.done(*ready)
    return ordered
