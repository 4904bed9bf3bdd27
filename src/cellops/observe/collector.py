"""State read from the store at each scrape: one read-only connection of its own (WAL:
it never waits for the controller's writes), a handful of grouped queries, so a scrape of
a 1,000-cell x 50-service fleet stays well under 100 ms.

Health is the cells' as last observed when an `observe` function is given (the
controller's: local cells' status files, Kubernetes cells as last read), else as the
controller last judged it (the ledger: healthy at the revision applied).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cellops.controller.exposure import EXPOSURE

if TYPE_CHECKING:  # the backends (and what they import) only for their types
    from cellops.backends.base import CellObservation


COUNTED = {  # events the store keeps, counted as they are (they are never deleted)
    "drift": ("cellops_drift_repairs", "Repairs of cells changed outside cellops.", {}),
    "agent-restarted": ("cellops_agent_restarts", "Cell agents found dead and started.", {}),
    "rolled-back": ("cellops_rollbacks", "Cell rollbacks, by result.", {"result": "done"}),
    "rollback-failed": ("cellops_rollbacks", "", {"result": "failed"}),
}
PHASES = ("apply", "progress", "bake", "paused", "idle")


class StoreCollector(Collector):
    def __init__(
        self, database: Path, observe: Callable[[str], CellObservation] | None = None
    ) -> None:
        self._db = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro",  # escaped: a folder may hold '?' or '#'
            uri=True,
            check_same_thread=False,
            timeout=5.0,
        )
        self._observe = observe
        self._lock = threading.Lock()
        self._version: int | None = None  # the store's data_version the cache was read at
        self._judged: list[Metric] = []
        self._stored: list[Metric] = []

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql).fetchall())

    def collect(self) -> Iterator[Metric]:
        """The store is read again only when another connection committed since the last
        scrape (`PRAGMA data_version`): an idle fleet's scrape costs the text alone."""
        version = int(self._rows("PRAGMA data_version")[0][0])
        if version != self._version:
            self._stored = [
                *self._revisions(),
                *self._rollout(),
                *self._counted(),
                *self._exposure(),
            ]
            self._judged = list(self._health()) if self._observe is None else []
            self._version = version
        yield from self._health() if self._observe is not None else self._judged
        yield from self._stored

    def _health(self) -> Iterator[Metric]:
        """Per cell and per service, not per cell x service: a 1,000-cell x 50-service
        fleet is 2,000 series, not 50,000 (which one service of a cell is unhealthy is
        the API's and `cellops status`' to say)."""
        cells = _Gauges(("cell",))
        services = _Gauges(("service",))
        if self._observe is None:
            revisions = self._judged_health(cells, services)
        else:
            revisions = self._observed(self._observe, cells, services)
        yield cells.family(
            "cellops_cell_healthy",
            "1 when every service of the cell is healthy at the revision applied there.",
            whole=True,
        )
        yield cells.family(
            "cellops_cell_unhealthy_services",
            "Services of the cell not healthy at the revision applied there.",
            unhealthy=True,
        )
        yield services.family(
            "cellops_service_healthy_cells",
            "Cells where the service is healthy at the revision applied there.",
        )
        yield services.family(
            "cellops_service_cells", "Cells the service is applied to.", total=True
        )
        info = GaugeMetricFamily(
            "cellops_cell_revision_info",
            "The revisions applied to each cell's services (one, unless mid-rollout).",
            labels=("cell", "revision"),
        )
        for cell, revision in sorted(revisions):
            info.add_metric((cell, revision), 1.0)
        yield info

    def _judged_health(self, cells: _Gauges, services: _Gauges) -> set[tuple[str, str]]:
        """Health as the controller last judged it, counted by SQLite from the ledger's
        indexes (not row by row); the revisions each cell runs."""
        revisions: set[tuple[str, str]] = set()
        for cell, rev, total, healthy in self._rows(
            "SELECT cell, applied_rev, count(*), sum(healthy_rev IS applied_rev) FROM ledger"
            " WHERE applied_hash IS NOT NULL GROUP BY cell, applied_rev"
        ):
            cells.add((cell,), healthy, total)
            revisions.add((cell, rev or ""))
        for service, total, healthy in self._rows(
            "SELECT service, count(*), sum(healthy_rev IS applied_rev) FROM ledger"
            " WHERE applied_hash IS NOT NULL GROUP BY service"
        ):
            services.add((service,), healthy, total)
        return revisions

    def _observed(
        self, observe: Callable[[str], CellObservation], cells: _Gauges, services: _Gauges
    ) -> set[tuple[str, str]]:
        """Health as each cell reports it now (one look per cell); the revisions seen."""
        seen: CellObservation | None = None
        revisions: set[tuple[str, str]] = set()
        for cell, service, hash_, rev in self._rows(
            "SELECT cell, service, applied_hash, coalesce(applied_rev, '') FROM ledger"
            " WHERE applied_hash IS NOT NULL ORDER BY cell"
        ):
            if seen is None or seen.cell != cell:
                seen = observe(cell)
            ok = seen.reachable and seen.healthy_at(service, hash_)
            cells.add((cell,), int(ok), 1)
            services.add((service,), int(ok), 1)
            revisions.add((cell, rev))
        return revisions

    def _revisions(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "cellops_revisions", "Revisions judged, by verdict.", labels=("verdict",)
        )
        counts = {
            bool(a): int(str(n))
            for a, n in self._rows("SELECT accepted, count(*) FROM revisions GROUP BY accepted")
        }
        total.add_metric(("accepted",), counts.get(True, 0))
        total.add_metric(("rejected",), counts.get(False, 0))
        current = GaugeMetricFamily(
            "cellops_fleet_revision_info",
            "The fleet's current (last accepted) revision.",
            labels=("revision",),
        )
        for (value,) in self._rows("SELECT value FROM settings WHERE key = 'fleet.current'"):
            current.add_metric((str(value),), 1.0)
        yield from (total, current)

    def _rollout(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "cellops_rollouts", "Rollouts the store keeps, by state.", labels=("state",)
        )
        for state, count in self._rows("SELECT state, count(*) FROM rollouts GROUP BY state"):
            states.add_metric((str(state),), float(count))
        phase = GaugeMetricFamily(
            "cellops_rollout_phase",
            "The latest rollout's phase (idle when none runs): 1 for the current one.",
            labels=("phase",),
        )
        info = GaugeMetricFamily(
            "cellops_rollout_info",
            "The latest rollout: its id, revision and state.",
            labels=("rollout", "revision", "state"),
        )
        wave = GaugeMetricFamily(
            "cellops_rollout_wave", "The latest rollout's current wave (0: the first)."
        )
        waves = GaugeMetricFamily("cellops_rollout_waves", "How many waves the latest rollout has.")
        latest = self._rows(
            "SELECT id, revision, state, wave, phase, paused, plan FROM rollouts"
            " ORDER BY id DESC LIMIT 1"
        )
        current = "idle"
        for rollout, revision, state, index, at, paused, plan in latest:
            info.add_metric((str(rollout), str(revision), str(state)), 1.0)
            wave.add_metric((), float(index))
            data = json.loads(str(plan))
            waves.add_metric((), float(len(data if isinstance(data, list) else data["waves"])))
            if state == "running":
                current = "paused" if paused else str(at)
        for name in PHASES:
            phase.add_metric((name,), float(name == current))
        yield from (states, phase, info, wave, waves)

    def _exposure(self) -> Iterator[Metric]:
        """The controller's last exposure (`cellops.controller.exposure`); none before a
        routing table was published."""
        gauge = GaugeMetricFamily(
            "cellops_revision_exposure_ratio",
            "Weighted share of the listed tenants on cells running a revision not yet baked.",
            labels=("revision",),
        )
        for (raw,) in self._rows(f"SELECT value FROM settings WHERE key = '{EXPOSURE}'"):
            record = json.loads(str(raw))
            gauge.add_metric((str(record["revision"]),), float(record["ratio"]))
        yield gauge

    def _counted(self) -> Iterator[Metric]:
        kinds = ", ".join(f"'{k}'" for k in COUNTED)
        found = dict(
            self._rows(f"SELECT kind, count(*) FROM events WHERE kind IN ({kinds}) GROUP BY kind")
        )
        families: dict[str, CounterMetricFamily] = {}
        for kind, (name, doc, labels) in COUNTED.items():
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(name, doc, labels=tuple(labels))
            family.add_metric(tuple(labels.values()), float(found.get(kind, 0)))
        deliveries = CounterMetricFamily(
            "cellops_notifications",
            "Notification delivery attempts, by result.",
            labels=("result",),
        )
        sent = dict(
            self._rows("SELECT delivered, count(*) FROM notify_deliveries GROUP BY delivered")
        )
        deliveries.add_metric(("delivered",), float(sent.get(1, 0)))
        deliveries.add_metric(("failed",), float(sent.get(0, 0)))
        yield from (*families.values(), deliveries)


class _Gauges:
    """Healthy and total counts per label value, turned into gauge families."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.healthy: dict[tuple[str, ...], int] = {}
        self.total: dict[tuple[str, ...], int] = {}

    def add(self, key: tuple[str, ...], healthy: int, total: int) -> None:
        self.healthy[key] = self.healthy.get(key, 0) + healthy
        self.total[key] = self.total.get(key, 0) + total

    def family(
        self,
        name: str,
        doc: str,
        *,
        whole: bool = False,
        unhealthy: bool = False,
        total: bool = False,
    ) -> GaugeMetricFamily:
        out = GaugeMetricFamily(name, doc, labels=self.labels)
        for key, n in self.total.items():
            ok = self.healthy[key]
            value = float(ok == n) if whole else n - ok if unhealthy else n if total else ok
            out.add_metric(key, float(value))
        return out
