"""The controller's loop: timers, the webhook wake-up, and clean shutdown on SIGTERM.

Shutdown leaves every workload running; a controller started again resumes the rollout
from the store and re-adopts the cells.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

from cellops.controller.reconcile import Reconciler

TICK = 0.2


class ControllerLoop:
    def __init__(self, reconciler: Reconciler, poll_interval: float) -> None:
        self.reconciler = reconciler
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_poll = 0.0

    def wake(self) -> None:
        """A push arrived: look at the source now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self, on_pass: Callable[[], None] | None = None) -> None:
        while not self._stop.is_set():
            self.run_once()
            if on_pass is not None:
                on_pass()
            self._wake.wait(TICK)

    def run_once(self) -> None:
        now = time.monotonic()
        pushed = self._wake.is_set()
        self._wake.clear()
        poll = pushed or now >= self._next_poll
        if poll:
            self._next_poll = now + self.poll_interval
        self.reconciler.reconcile(check_source=poll)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()
