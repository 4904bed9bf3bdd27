"""What `cellops up` adds to a running controller: its metrics (fed once per pass, timed
passes, `/metrics` for the listener) and its notifications (a thread of their own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import Route
from starlette.types import ASGIApp

from cellops.notify.config import Target
from cellops.notify.notifier import Notifier
from cellops.observe.http import RequestTimer, metrics_route
from cellops.observe.metrics import ControllerMetrics
from cellops.store.base import Store

if TYPE_CHECKING:  # the backends (and what they import) only for their types
    from cellops.backends.base import CellObservation


class Observability:
    def __init__(
        self,
        store: Store,
        database: Path,
        observe: Callable[[str], CellObservation] | None = None,
        targets: Sequence[Target] = (),
        fleet: str = "",
    ) -> None:
        self.metrics = ControllerMetrics(store, database, observe)
        self.notifier = Notifier(database, targets, fleet=fleet) if targets else None

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()

    def timed(self, seconds: float) -> None:
        """After each pass: its duration, and what its events say happened."""
        self.metrics.reconcile_pass.observe(seconds)
        self.metrics.follow()

    def routes(self) -> list[Route]:
        return [metrics_route(self.metrics)]

    def timer(self, app: ASGIApp) -> ASGIApp:
        """`app` with each request's duration observed (by route template)."""
        return RequestTimer(app, self.metrics)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()
        self.metrics.close()
