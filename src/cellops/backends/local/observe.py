"""A local cell as its agent reports it: read from the cell's folder, without the backend.

`cellops status` and `get` observe cells with this alone, so they start without the
renderer, the spec models or the container runtime that applying a cell needs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cellops.backends.base import CellObservation, DriftRepair, ServiceObservation
from cellops.backends.local import process
from cellops.backends.local.layout import cell_paths, read_json
from cellops.health import Health
from cellops.health.replicas import PodView, assess

STALE_AFTER = 5.0  # seconds without a heartbeat before an agent counts as unreachable


def agent_alive(root: Path, cell: str) -> bool:
    record = read_json(cell_paths(root, cell).pidfile)
    return record is not None and process.alive(int(record["pid"]), int(record["started"] or 0))


def observe_cell(root: Path, cell: str) -> CellObservation:
    """The cell's last report, and whether its agent still runs and reports."""
    paths = cell_paths(root, cell)
    status = read_json(paths.status)
    desired = read_json(paths.desired) or {}
    if status is None:
        return CellObservation(
            cell,
            reachable=False,
            desired=desired.get("hash"),
            reason="the cell agent has not reported",
        )
    fresh = time.time() - float(status.get("heartbeat", 0)) < STALE_AFTER
    reachable = fresh and agent_alive(root, cell)
    services = {name: _service(name, data) for name, data in status.get("services", {}).items()}
    repairs = tuple(DriftRepair(r["service"], r["what"]) for r in status.get("repairs", []))
    return CellObservation(
        cell,
        reachable,
        services,
        applied=status.get("applied"),
        repairs=repairs,
        reason="" if reachable else "the cell agent is not running",
        desired=desired.get("hash"),
        repair_seq=int(status.get("repairSeq", 0)),
    )


def _service(name: str, data: dict[str, Any]) -> ServiceObservation:
    pods = [
        PodView(p["hash"], bool(p["ready"]), int(p["restarts"]), p["state"] == "waiting")
        for p in data.get("pods", [])
    ]
    want = int(data.get("replicas", 0))
    health, reason, running = _listening(*assess(want, str(data.get("hash")), pods), data)
    return ServiceObservation(
        service=name,
        hash=running,
        health=health,
        ready=sum(p.ready for p in pods),
        desired=want,
        restarts=sum(p.restarts for p in pods),
        reason=reason,
    )


def _listening(
    health: Health, reason: str, running: str | None, data: dict[str, Any]
) -> tuple[Health, str, str | None]:
    """A service whose port is not served is not healthy, whatever its replicas say: a
    port that cannot be listened on is degraded, one not listened on yet progressing."""
    for port, state in sorted(data.get("listeners", {}).items()):
        if state == "bound":
            continue
        why = f"port {port} is not served: {state.partition(': ')[2] or state}"
        if state.startswith("failed"):
            return Health.DEGRADED, why, running
        if health is Health.HEALTHY:
            health, reason = Health.PROGRESSING, why
    return health, reason, running
