"""What a Kubernetes cell's services are doing, from the live objects cellops applied:
per service the worst health of its objects, and the version its Deployment runs (the
service hash on its metadata, once its rollout is done)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cellops.backends.base import ServiceObservation
from cellops.diff.live import ObjectKey
from cellops.health import Health, worst
from cellops.health.kubernetes import assess
from cellops.render.kubernetes import FROM_MANIFESTS, HASH, SERVICE
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
        running: str | None = None
        ready = want = 0
        for item, body in members:
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
            workload = key.kind == "Deployment" and key.name == service
            if workload and FROM_MANIFESTS not in (body["metadata"].get("annotations") or {}):
                annotated = (obj.get("metadata", {}).get("annotations") or {}).get(HASH)
                running = annotated if health is not Health.PROGRESSING else None
                ready = int(obj.get("status", {}).get("readyReplicas") or 0)
                want = int(obj.get("spec", {}).get("replicas") or 0)
        seen[service] = ServiceObservation(
            service=service,
            hash=running,
            health=worst(healths),
            ready=ready,
            desired=want,
            reason="; ".join(reasons),
        )
    return seen
