"""The parallel-run scorecard: the old pipeline's record beside cellops' own, figure by
figure (pure). The record of each side is plain data; `side_by_side` lines them up.

Figures, each for the whole fleet and per service where it applies:
- deploy time p50/p90: the old pipeline's deploy from start to end; a cellops rollout
  from its start to its end (the fleet), or to the last cell of the service healthy;
- change failure rate: deploys that failed or were rolled back / deploys (cellops: the
  DORA rule, `figures.py`);
- incidents: the old record's incidents; cellops' cell failures (each one contained to
  its cell and rolled back, or not);
- escalations (events that needed a human): the old record's pages; cellops' halted
  rollouts, failed rollbacks and manual aborts.
Counts are also given per week, since the two records may span different periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cellops.dora.facts import RolloutFacts, cells_of_service
from cellops.dora.stats import percentile

WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Deploy:
    service: str
    start: float
    end: float
    failed: bool


@dataclass(frozen=True)
class Record:
    """One side's record over `span` seconds: its deploys, incidents (each with the
    services it touched; none known: the fleet's only) and escalations."""

    deploys: Sequence[Deploy]
    incidents: Sequence[tuple[str, ...]]
    escalations: int
    span: float
    escalation_kinds: dict[str, int] = field(default_factory=dict)


def cellops_deploys(rollouts: Sequence[RolloutFacts]) -> list[Deploy]:
    """Each ended rollout as a deploy of the fleet (service "") and of each service it
    changed; a service's deploy ends when its last cell was healthy at the revision."""
    out: list[Deploy] = []
    for r in rollouts:
        if not r.ended or r.ended_at is None or r.state == "superseded":
            continue
        out.append(Deploy("", r.started_at, r.ended_at, r.failure))
        services = sorted({s for names in r.cells.values() for s in names})
        for service in services:
            cells = cells_of_service(r, service)
            healthy = [t for c, t in r.healthy_at.items() if c in cells]
            end = max(healthy) if healthy and r.state == "completed" else r.ended_at
            out.append(Deploy(service, r.started_at, end, bool(cells & r.failed) or r.halted))
    return out


def side_by_side(baseline: Record, cellops: Record) -> dict[str, object]:
    services = sorted({d.service for d in [*baseline.deploys, *cellops.deploys] if d.service})
    return {
        "fleet": {"baseline": _figures(baseline, ""), "cellops": _figures(cellops, "")},
        "services": {
            s: {"baseline": _figures(baseline, s), "cellops": _figures(cellops, s)}
            for s in services
        },
        "escalations": {
            "baseline": {"pages": baseline.escalations},
            "cellops": dict(cellops.escalation_kinds),
        },
    }


def _figures(record: Record, service: str) -> dict[str, object]:
    deploys = [d for d in record.deploys if d.service == service]
    if not service:  # the old pipeline's fleet: every deploy it made
        deploys = deploys or list(record.deploys)
    times = [max(0.0, d.end - d.start) for d in deploys]
    failed = sum(1 for d in deploys if d.failed)
    incidents = [i for i in record.incidents if not service or service in i]
    weeks = max(record.span, 1.0) / WEEK
    out: dict[str, object] = {
        "deploys": len(deploys),
        "deploy_time_p50_seconds": percentile(times, 50),
        "deploy_time_p90_seconds": percentile(times, 90),
        "change_failure_rate": round(failed / len(deploys), 4) if deploys else None,
        "incidents": len(incidents),
        "incidents_per_week": round(len(incidents) / weeks, 4),
    }
    if not service:
        out["escalations"] = record.escalations
        out["escalations_per_week"] = round(record.escalations / weeks, 4)
    return out
