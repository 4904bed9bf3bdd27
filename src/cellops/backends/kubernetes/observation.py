"""What a Kubernetes cell's services are doing, from the live objects cellops applied:
per service the worst health of its objects, and the version its Deployment runs (the
service hash on its metadata, once its rollout is done); for a manifests-only service,
the version stamped on all its own workloads, and their pods counted together."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cellops.backends.base import ServiceObservation
from cellops.diff.live import ObjectKey
from cellops.health import Health, worst
from cellops.health.kubernetes import assess
from cellops.render.kubernetes import FROM_MANIFESTS, SERVICE
from cellops.render.own import HASH, workload_replicas
from cellops.store.records import InventoryItem


def service_observations(
    items: list[InventoryItem], live: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, ServiceObservation]:
    """Per service: the health of its objects, and the version its Deployment runs."""
    by_service: dict[str, list[tuple[InventoryItem, dict[str, Any]]]] = {}
    for item in items:
        body = json.loads(item.body)
        service = (body["metadata"].get("labels") or {}).get(SERVICE)
        if service is not None:
            by_service.setdefault(service, []).append((item, body))
    seen: dict[str, ServiceObservation] = {}
    for service, members in by_service.items():
        healths: list[Health] = []
        reasons: list[str] = []
        for item, _ in members:
            obj = live.get((item.cluster, item.key))
            key = ObjectKey.parse(item.key)
            if obj is None:
                healths.append(Health.MISSING)
                reasons.append(f"{key} is missing")
                continue
            health, reason = assess(obj)
            healths.append(health)
            if reason:
                reasons.append(f"{key.kind} {reason}")
        running, ready, want = _version(service, members, live)
        seen[service] = ServiceObservation(
            service=service,
            hash=running,
            health=worst(healths),
            ready=ready,
            desired=want,
            reason="; ".join(reasons),
        )
    return seen


def _version(
    service: str,
    members: list[tuple[InventoryItem, dict[str, Any]]],
    live: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[str | None, int, int]:
    """(the version the service runs, ready pods, desired pods). A service with an image:
    its Deployment's. A manifests-only service: the version stamped on all its workloads
    (None while any of them is missing, progressing or stamped otherwise), pods summed."""
    stamped: list[Mapping[str, Any] | None] = []
    for item, body in members:
        obj = live.get((item.cluster, item.key))
        if FROM_MANIFESTS not in (body["metadata"].get("annotations") or {}):
            key = ObjectKey.parse(item.key)
            if key.kind == "Deployment" and key.name == service:
                return _running(obj), *workload_replicas(obj or {})
        elif HASH in (body["metadata"].get("annotations") or {}):
            stamped.append(obj)
    if not stamped:
        return None, 0, 0
    versions = {_running(obj) for obj in stamped}
    running = versions.pop() if len(versions) == 1 else None
    counts = [workload_replicas(obj or {}) for obj in stamped]
    return running, sum(r for r, _ in counts), sum(w for _, w in counts)


def _running(obj: Mapping[str, Any] | None) -> str | None:
    """The version a live object carries, once its rollout is done."""
    if obj is None or assess(obj)[0] is Health.PROGRESSING:
        return None
    return (obj.get("metadata", {}).get("annotations") or {}).get(HASH)
