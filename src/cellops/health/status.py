"""Health statuses, ordered from best to worst, with a "worst of" combinator.

The order follows gitops-engine's: a cell is as healthy as its least healthy service.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Health(StrEnum):
    HEALTHY = "healthy"  # every replica ready at the desired version
    PROGRESSING = "progressing"  # moving towards the desired version; give it time
    UNKNOWN = "unknown"  # no fresh observation
    MISSING = "missing"  # should exist, does not
    DEGRADED = "degraded"  # failing: crash loop, probes failing, deadline passed

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def is_worse(self, other: Health) -> bool:
        return self.rank > other.rank


_ORDER = [Health.HEALTHY, Health.PROGRESSING, Health.UNKNOWN, Health.MISSING, Health.DEGRADED]


def worst(healths: Iterable[Health]) -> Health:
    """The worst of `healths`; HEALTHY for none (nothing to be unhealthy)."""
    return max(healths, key=lambda h: h.rank, default=Health.HEALTHY)
