"""The controller's Prometheus metrics (`cellops_` prefix, seconds, `_total` counters).

Two kinds: state read from the store at each scrape (`StoreCollector`: health, revisions,
the rollout's phase, and counters the store's records already count, so they survive a
restart), and histograms the controller observes as things happen (`ControllerMetrics`):
commit -> canary healthy, commit -> fleet complete, rollback duration, reconcile pass
duration, API request latency.

The histograms are fed from the store's events (`ControllerMetrics.follow`, once per
pass), so no part of the controller needs to know about metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from cellops.observe.collector import StoreCollector
from cellops.store.base import Store
from cellops.store.records import Event

if TYPE_CHECKING:  # the backends (and what they import) only for their types
    from cellops.backends.base import CellObservation

# a rollout's stages take seconds (a canary with a bake) to hours (a fleet in waves)
ROLLOUT_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ControllerMetrics:
    """One registry per controller (never the process-global one: two controllers in one
    test process must not share series)."""

    def __init__(
        self,
        store: Store,
        database: Path,
        observe: Callable[[str], CellObservation] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = store
        self.commit_to_canary = self._histogram(
            "cellops_commit_to_canary_healthy_seconds",
            "From a revision's commit to its rollout's first wave (the canary) healthy and baked.",
            ROLLOUT_BUCKETS,
        )
        self.commit_to_fleet = self._histogram(
            "cellops_commit_to_fleet_complete_seconds",
            "From a revision's commit to its rollout completed on every planned cell.",
            ROLLOUT_BUCKETS,
        )
        self.rollback = self._histogram(
            "cellops_rollback_duration_seconds",
            "From a cell's failure to the cell healthy on its last good state again.",
            ROLLOUT_BUCKETS,
        )
        self.reconcile_pass = self._histogram(
            "cellops_reconcile_pass_duration_seconds",
            "One pass of the controller: source, rollout step, cells kept.",
            PASS_BUCKETS,
        )
        self.api_request = Histogram(
            "cellops_api_request_duration_seconds",
            "HTTP requests to the controller's listener, by method, route and status code.",
            ("method", "route", "code"),
            registry=self.registry,
            buckets=API_BUCKETS,
        )
        self.collector = StoreCollector(database, observe)
        self.registry.register(self.collector)
        latest = store.events(limit=1)
        self._seen = latest[-1].id if latest else 0
        self._canary_seen: set[int] = set()
        self._failed_at: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()

    def _histogram(self, name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, registry=self.registry, buckets=buckets)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def follow(self) -> None:
        """Observe what the store's new events say happened (called once per pass)."""
        with self._lock:
            for event in self.store.events(after=self._seen, limit=1000):
                self._seen = event.id
                self._on(event)

    def _on(self, event: Event) -> None:
        rollout = event.rollout
        if rollout is None:
            return
        if event.kind == "wave-done" and rollout not in self._canary_seen:
            self._canary_seen.add(rollout)  # the first wave done is the canary's
            self._since_commit(self.commit_to_canary, event)
        elif event.kind == "rollout-completed":
            self._since_commit(self.commit_to_fleet, event)
        elif event.kind == "cell-failed" and event.cell:
            self._failed_at.setdefault((rollout, event.cell), event.at)
        elif event.kind == "recovered" and event.cell:
            failed = self._failed_at.pop((rollout, event.cell), None)
            if failed is not None:
                self.rollback.observe(max(0.0, event.at - failed))

    def _since_commit(self, histogram: Histogram, event: Event) -> None:
        record = self.store.revision(event.revision) if event.revision else None
        if record is not None:
            committed = record.committed_at or record.seen_at
            histogram.observe(max(0.0, event.at - committed))

    def close(self) -> None:
        self.collector.close()
