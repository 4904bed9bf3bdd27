"""Health of a service from its replicas, with Deployment semantics.

Healthy: as many ready replicas at the desired version as wanted, and none left at another
version. Degraded: a replica at the desired version is crash-looping. Progressing: anything
in between; the rollout's progress deadline decides when that becomes a failure.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cellops.health.status import Health

CRASH_LOOP_RESTARTS = 3


@dataclass(frozen=True)
class PodView:
    hash: str
    ready: bool
    restarts: int
    waiting: bool  # exited, waiting for its back-off to restart


def assess(want: int, desired_hash: str, pods: Sequence[PodView]) -> tuple[Health, str, str | None]:
    """(health, reason, the version every pod runs or None when mixed or none)."""
    current = [p for p in pods if p.hash == desired_hash]
    others = len(pods) - len(current)
    versions = {p.hash for p in pods}
    running = next(iter(versions)) if len(versions) == 1 else (desired_hash if not pods else None)
    looping = [p for p in current if p.restarts >= CRASH_LOOP_RESTARTS and not p.ready]
    if looping:
        return Health.DEGRADED, f"CrashLoopBackOff: {len(looping)} replica(s) restarting", running
    ready = sum(p.ready for p in current)
    if ready >= want and len(current) == want and not others:
        return Health.HEALTHY, "", running
    return Health.PROGRESSING, f"{ready}/{want} ready at the desired version, {others} old", running
