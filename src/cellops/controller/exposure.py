"""Exposure, live: the weighted share of tenants on cells that run something not yet
baked (a revision applied but not proven good), kept in the store for `status`, the API
and metrics, and what a wave's `maxExposure` caps before the wave is applied.

The controller recomputes it on each pass, and writes it only when the routing table or
the set of unbaked cells changed. `current_exposure(store)` is how other parts read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cellops.model.errors import CellopsError
from cellops.store.base import Store
from cellops.store.records import LedgerRow, Rollout
from cellops.tenancy.exposure import CapVerdict, cap_verdict, cell_shares, exposure
from cellops.tenancy.table import RoutingTable

EXPOSURE = "tenancy.exposure"  # the store setting: an ExposureRecord as JSON


def unbaked_cells(rows: Iterable[LedgerRow]) -> frozenset[str]:
    """Cells holding a service as applied but not (yet) as proven good: mid-rollout,
    baking, failed and kept, or never baked at all."""
    return frozenset(r.cell for r in rows if r.applied_hash != r.good_hash)


@dataclass(frozen=True)
class ExposureRecord:
    ratio: float  # 0.0-1.0
    revision: str  # the routing table's revision
    version: int  # the routing table's version
    cells: tuple[str, ...]  # the unbaked cells with routes, sorted

    def as_dict(self) -> dict[str, object]:
        return {
            "ratio": self.ratio,
            "revision": self.revision,
            "version": self.version,
            "cells": list(self.cells),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict())


class Settings(Protocol):
    """What reading the exposure needs of a store (the controller's, or a read model's)."""

    def setting(self, key: str) -> str | None: ...


def exposure_record(store: Settings) -> ExposureRecord | None:
    """The last exposure the controller recorded; None before it placed any tenant."""
    raw = store.setting(EXPOSURE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return ExposureRecord(
            float(data["ratio"]),
            str(data["revision"]),
            int(data["version"]),
            tuple(str(c) for c in data["cells"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def current_exposure(store: Settings) -> float | None:
    """0.0-1.0, or None when unknown (no routing table yet)."""
    record = exposure_record(store)
    return None if record is None else record.ratio


class ExposureTracker:
    """Keeps the store's exposure current; `table` gives the routing table in use."""

    def __init__(self, table: Callable[[], RoutingTable | None]) -> None:
        self.table = table
        self._last: tuple[int, str, frozenset[str]] | None = None

    def update(self, store: Store) -> ExposureRecord | None:
        table = self.table()
        if table is None:
            return None
        if not table.tenants:  # no tenant listed: nothing to measure (and nothing shown)
            if self._last != (table.version, table.revision, frozenset()):
                store.delete_setting(EXPOSURE)
                self._last = (table.version, table.revision, frozenset())
            return None
        unbaked = unbaked_cells(store.ledger_rows()) & frozenset(table.cells)
        key = (table.version, table.revision, unbaked)
        if key == self._last:
            return None
        record = ExposureRecord(
            exposure(table, unbaked), table.revision, table.version, tuple(sorted(unbaked))
        )
        store.set_setting(EXPOSURE, record.to_json())
        self._last = key
        return record


class ExposureGate:
    """Before a wave is applied: would it raise the exposure above the wave's
    `maxExposure`? Its own cells over the cap: the rollout cannot go on (`impossible`);
    with cells outside the rollout still unbaked: it waits (recorded once per wave)."""

    def __init__(
        self,
        store: Store,
        table: Callable[[], RoutingTable | None],
        caps: Callable[[str], Mapping[str, float]],
    ) -> None:
        self.store, self.table, self.caps = store, table, caps
        self._shares: tuple[tuple[int, str], dict[str, float]] | None = None
        self._told: tuple[int, int, str] | None = None

    def __call__(self, rollout: Rollout, now: float) -> CapVerdict | None:
        wave = rollout.plan[rollout.wave]
        table = self.table()
        try:
            cap = self.caps(rollout.revision).get(wave.name)
        except CellopsError:  # its commit is gone: the rollout halts on its own
            return None
        if cap is None or table is None:
            return None
        planned = {c for w in rollout.plan.waves for c in w.cell_names}
        others = unbaked_cells(self.store.ledger_rows()) - planned
        verdict = cap_verdict(self._shares_of(table), wave.cell_names, others, cap)
        told = (rollout.id, rollout.wave, verdict.message if verdict else "")
        if verdict is not None and not verdict.impossible and told != self._told:
            self.store.add_event(
                now,
                "exposure-held",
                f"wave {wave.name}: {verdict.message}",
                revision=rollout.revision,
                rollout=rollout.id,
            )
        self._told = told
        return verdict

    def _shares_of(self, table: RoutingTable) -> dict[str, float]:
        key = (table.version, table.revision)
        if self._shares is None or self._shares[0] != key:
            self._shares = (key, cell_shares(table.tenants, table.weights))
        return self._shares[1]
