"""Order the affected cells into waves from the fleet's rollout policy.

Rules, in order:
- quarantined and retired cells are never planned (they are listed as skipped);
- each declared wave takes, from the cells not yet planned, those its `selector` matches,
  or `percent` of them (rounded up, at least one) in name order;
- if the first (canary) wave picks nothing, or only cells that lose services, and
  `canaryFallback` is on, the first cell (in name order) that gets a created or changed
  service joins it, so a bad change still stops at one cell;
- cells left after the last declared wave form a final wave named `remainder`;
- a wave larger than its `maxConcurrent` is split into batches of at most that many cells;
  each batch is one step of the rollout;
- a wave with `maxExposure` (the `remainder` takes the last wave's) is split, in name
  order, into batches whose cells hold at most that share of the tenants (`shares`: each
  cell's weighted share); a cell over it alone is a batch of its own, which the
  controller refuses to apply (`cellops.tenancy.exposure.cap_verdict`);
- inside a cell, services are applied dependencies first and deleted dependants first.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cellops.diff.changeset import Action, CellChanges, Change, ChangeSet
from cellops.plan.ordering import order_changes
from cellops.spec.cell import CellState
from cellops.spec.fleet import RolloutPolicy, WaveSpec

REMAINDER = "remainder"
FROZEN = frozenset({CellState.QUARANTINED, CellState.RETIRED})


@dataclass(frozen=True)
class PlannedCell:
    cell: str
    changes: tuple[Change, ...]  # in the order they must be applied


@dataclass(frozen=True)
class Wave:
    """One step of a rollout: the cells of one batch of one declared wave."""

    index: int
    name: str
    batch: int  # 1-based, within the declared wave
    batches: int
    bake: float
    canary: bool
    cells: tuple[PlannedCell, ...]


@dataclass(frozen=True)
class Skipped:
    cell: str
    reason: str


@dataclass(frozen=True)
class Plan:
    revision: str
    waves: tuple[Wave, ...]
    skipped: tuple[Skipped, ...]
    policy: RolloutPolicy

    @property
    def cells(self) -> list[str]:
        return [c.cell for wave in self.waves for c in wave.cells]

    def count(self, action: Action) -> int:
        return sum(
            1 for w in self.waves for c in w.cells for ch in c.changes if ch.action is action
        )


def plan(
    changes: ChangeSet, policy: RolloutPolicy, shares: Mapping[str, float] | None = None
) -> Plan:
    skipped = tuple(Skipped(c.cell, str(c.state)) for c in changes.affected if c.state in FROZEN)
    remaining = [c for c in changes.affected if c.state not in FROZEN]
    groups: list[tuple[WaveSpec, list[CellChanges]]] = []
    for position, wave in enumerate(policy.waves):
        picked = _pick(wave, remaining)
        if position == 0 and policy.canary_fallback:
            picked = _with_a_canary(picked, remaining)
        taken = {c.cell for c in picked}
        remaining = [c for c in remaining if c.cell not in taken]
        groups.append((wave, picked))
    if remaining:
        last = policy.waves[-1]
        tail = WaveSpec(
            name=REMAINDER, percent=100, max_concurrent=last.max_concurrent, bake=last.bake
        ).model_copy(update={"max_exposure": last.max_exposure})
        groups.append((tail, remaining))
    return Plan(changes.revision, tuple(_batches(groups, shares or {})), skipped, policy)


def wave_caps(policy: RolloutPolicy) -> dict[str, float]:
    """Each wave's `maxExposure` by name, the remainder's (the last wave's) included."""
    caps = {w.name: w.max_exposure for w in policy.waves if w.max_exposure is not None}
    last = policy.waves[-1].max_exposure
    if last is not None:
        caps.setdefault(REMAINDER, last)
    return caps


def _with_a_canary(picked: list[CellChanges], remaining: list[CellChanges]) -> list[CellChanges]:
    """The first wave must run the new code somewhere: when it picks nothing, or only
    cells that lose services (a cell leaving the fleet), the first cell that gets a
    created or changed service joins it (or, with none, the first changed cell)."""

    def runs_new(c: CellChanges) -> bool:
        return any(ch.action is not Action.DELETED for ch in c.changes)

    if any(runs_new(c) for c in picked):
        return picked
    extra = next((c for c in remaining if runs_new(c) and c not in picked), None)
    if extra is None and not picked:
        extra = next(iter(remaining), None)
    return [*picked, extra] if extra is not None else picked


def _pick(wave: WaveSpec, remaining: list[CellChanges]) -> list[CellChanges]:
    if wave.selector is not None:
        wanted = wave.selector.items()
        return [c for c in remaining if wanted <= c.labels.items()]
    assert wave.percent is not None
    count = math.ceil(len(remaining) * wave.percent / 100)
    return remaining[:count]


def _chunks(
    wave: WaveSpec, cells: list[CellChanges], shares: Mapping[str, float]
) -> list[list[CellChanges]]:
    """Batches of at most `maxConcurrent` cells holding at most `maxExposure` together."""
    size = wave.max_concurrent or len(cells)
    cap = wave.max_exposure
    chunks: list[list[CellChanges]] = []
    held = 0.0
    for cell in cells:
        share = shares.get(cell.cell, 0.0)
        full = not chunks or len(chunks[-1]) >= size
        if full or (cap is not None and held + share > cap + 1e-9):
            chunks.append([])
            held = 0.0
        chunks[-1].append(cell)
        held += share
    return chunks


def _batches(
    groups: list[tuple[WaveSpec, list[CellChanges]]], shares: Mapping[str, float]
) -> list[Wave]:
    waves: list[Wave] = []
    for wave, cells in groups:
        if not cells:
            continue
        chunks = _chunks(wave, cells, shares)
        for number, chunk in enumerate(chunks, start=1):
            waves.append(
                Wave(
                    index=len(waves),
                    name=wave.name,
                    batch=number,
                    batches=len(chunks),
                    bake=wave.bake,
                    canary=not waves,
                    cells=tuple(PlannedCell(c.cell, order_changes(c.changes)) for c in chunk),
                )
            )
    return waves
