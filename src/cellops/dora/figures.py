"""The four DORA figures over a window, for the fleet, each service and each cell (pure).

Rules (each scope uses the same ones, on its rollouts narrowed by `facts.restrict`):
- a rollout belongs to the window it *ended* in (a running one to none yet);
- deployment frequency: rollouts that completed with a cell that took the revision, per
  day of the window;
- lead time for changes: commit time -> every planned cell that took the revision was
  healthy at it (cells that failed are not waited for);
- change failure rate: rollouts that halted or had a cell fail (rolled back, or kept) /
  every rollout that ended (completed, halted, aborted or superseded);
- time to restore: a cell's failure detected -> that cell healthy again (on its last
  good state after the rollback, or at a later revision); failures not restored yet
  are counted as `unrestored`, never as a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cellops.dora.facts import CellFailure, RolloutFacts, cells_of_service, restrict
from cellops.dora.stats import summary

DAY = 86400.0


@dataclass(frozen=True)
class Window:
    since: float
    until: float

    def __contains__(self, at: float | None) -> bool:
        return at is not None and self.since <= at < self.until

    @property
    def days(self) -> float:
        return max(self.until - self.since, 1.0) / DAY


def figures(
    rollouts: Sequence[RolloutFacts], failures: Sequence[CellFailure], window: Window
) -> dict[str, object]:
    """The four figures of one scope (its rollouts and cell failures already narrowed)."""
    ended = [r for r in rollouts if r.ended and r.ended_at in window]
    deployed = [r for r in ended if r.deployed]
    failed = [r for r in ended if r.failure]
    leads = [t for r in deployed if (t := r.lead_time) is not None]
    seen = [f for f in failures if f.detected_at in window]
    restores = [t for f in seen if (t := f.time_to_restore) is not None]
    return {
        "deployments": len(deployed),
        "deployment_frequency_per_day": round(len(deployed) / window.days, 4),
        "lead_time_seconds": summary(leads),
        "rollouts": len(ended),
        "change_failures": len(failed),
        "change_failure_rate": round(len(failed) / len(ended), 4) if ended else None,
        "failures": len(seen),
        "unrestored": len(seen) - len(restores),
        "time_to_restore_seconds": summary(restores),
    }


def report(
    rollouts: Sequence[RolloutFacts], failures: Sequence[CellFailure], window: Window
) -> dict[str, object]:
    """Figures for the whole fleet, then per service and per cell (each scope that any
    rollout of the window planned, or any failure of it touched)."""
    services = sorted(
        {s for r in rollouts for names in r.cells.values() for s in names}
        | {s for f in failures for s in f.services}
    )
    cells = sorted({c for r in rollouts for c in r.cells} | {f.cell for f in failures})
    return {
        "window": {"since": window.since, "until": window.until, "days": round(window.days, 4)},
        "fleet": figures(rollouts, failures, window),
        "services": {s: _service(rollouts, failures, window, s) for s in services},
        "cells": {c: _cell(rollouts, failures, window, c) for c in cells},
    }


def _service(
    rollouts: Sequence[RolloutFacts], failures: Sequence[CellFailure], window: Window, name: str
) -> dict[str, object]:
    narrowed = [n for r in rollouts if (n := restrict(r, cells_of_service(r, name))) is not None]
    return figures(narrowed, [f for f in failures if name in f.services], window)


def _cell(
    rollouts: Sequence[RolloutFacts], failures: Sequence[CellFailure], window: Window, name: str
) -> dict[str, object]:
    narrowed = [n for r in rollouts if (n := restrict(r, {name})) is not None]
    return figures(narrowed, [f for f in failures if f.cell == name], window)
