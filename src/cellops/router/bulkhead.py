"""A cell's bulkhead: a connection limit and a breaker, so a down, slow or hung cell costs
only its own tenants (a fast 503) and never the router's capacity for the others."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Limits:
    max_connections: int = 256  # requests in flight to one cell
    timeout: float = 10.0  # whole request, connect included
    connect_timeout: float = 2.0
    failures_to_open: int = 3  # consecutive failures that open the breaker
    open_for: float = 5.0  # seconds a breaker stays open before one trial request
    retry_after: int = 5  # what a refused client is told (seconds)


@dataclass
class Bulkhead:
    limits: Limits
    in_flight: int = 0
    failures: int = 0
    open_until: float = 0.0
    trial: bool = field(default=False)

    def enter(self) -> str | None:
        """None: go ahead (call `leave` after); else why the cell is refused."""
        now = time.monotonic()
        if self.failures >= self.limits.failures_to_open:
            if now < self.open_until or self.trial:
                return "cell unavailable (breaker open)"
            self.trial = True  # half open: one request tries the cell
        if self.in_flight >= self.limits.max_connections:
            return "cell at its connection limit"
        self.in_flight += 1
        return None

    def leave(self, ok: bool | None) -> None:
        """ok: the cell answered; False: it did not; None: the client left first (no news)."""
        self.in_flight -= 1
        self.trial = False
        if ok is None:
            return
        if ok:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= self.limits.failures_to_open:
            self.open_until = time.monotonic() + self.limits.open_for
