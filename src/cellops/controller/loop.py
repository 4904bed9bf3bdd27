"""The controller's loop: timers, the webhook wake-up, and clean shutdown on SIGTERM.

Shutdown leaves every workload running; a controller started again resumes the rollout
from the store and re-adopts the cells.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable

from cellops.controller.reconcile import Reconciler

TICK = 0.2
ERROR_PAUSE = 2.0  # after a failed pass, so a persistent fault does not spin


class ControllerLoop:
    def __init__(self, reconciler: Reconciler, poll_interval: float) -> None:
        self.reconciler = reconciler
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_poll = 0.0
        self.timed: Callable[[float], None] | None = None  # seconds of each pass (metrics)

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
        try:
            self.reconciler.reconcile(check_source=poll)
            if self.timed is not None:
                self.timed(time.monotonic() - now)
        except Exception as exc:  # a pass failed; the next one may not: never die here
            traceback.print_exc()
            with contextlib.suppress(Exception):
                self.reconciler.store.add_event(time.time(), "controller-error", repr(exc))
            self._wake.wait(ERROR_PAUSE)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()
