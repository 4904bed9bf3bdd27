"""Health of Kubernetes objects from their live status, with the semantics of Kubernetes
rollouts (gitops-engine's health checks are the model; no code is shared).

Each assessment answers (Health, reason). An object whose controller has not yet seen its
latest spec (`observedGeneration < generation`) is progressing whatever its status says.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cellops.health.status import Health

Assessment = tuple[Health, str]
Obj = Mapping[str, Any]


def assess(obj: Obj) -> Assessment:
    """The health of one live object; kinds without a notion of health are healthy."""
    check = _CHECKS.get(str(obj.get("kind", "")))
    return check(obj) if check is not None else (Health.HEALTHY, "")


def _stale(obj: Obj) -> str:
    generation = obj.get("metadata", {}).get("generation")
    observed = obj.get("status", {}).get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return f"waiting for the controller to observe generation {generation}"
    return ""


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _deployment(obj: Obj) -> Assessment:
    if obj.get("spec", {}).get("paused"):
        return Health.PROGRESSING, "rollout paused"
    if stale := _stale(obj):  # first: a deadline exceeded by the previous generation
        return Health.PROGRESSING, stale  # says nothing about the one just applied
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.DEGRADED, f"progress deadline exceeded: {progressing.get('message', '')}"
    status = obj.get("status", {})
    want = int(obj.get("spec", {}).get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < want:
        return Health.PROGRESSING, f"{updated} of {want} replicas updated"
    if total > updated:
        return Health.PROGRESSING, f"{total - updated} old replica(s) pending termination"
    if available < updated:
        return Health.PROGRESSING, f"{available} of {updated} updated replicas available"
    return Health.HEALTHY, ""


def _statefulset(obj: Obj) -> Assessment:
    if stale := _stale(obj):
        return Health.PROGRESSING, stale
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    strategy = spec.get("updateStrategy", {})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        updated = int(status.get("updatedReplicas", 0))
        if updated < want - partition:
            return Health.PROGRESSING, f"{updated} of {want - partition} pods updated"
        if not partition and status.get("updateRevision") != status.get("currentRevision"):
            return Health.PROGRESSING, "waiting for the update to finish"
    if ready < want:
        return Health.PROGRESSING, f"{ready} of {want} pods ready"
    return Health.HEALTHY, ""


def _daemonset(obj: Obj) -> Assessment:
    if stale := _stale(obj):
        return Health.PROGRESSING, stale
    status = obj.get("status", {})
    want = int(status.get("desiredNumberScheduled", 0))
    updated = int(status.get("updatedNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    if obj.get("spec", {}).get("updateStrategy", {}).get("type") == "OnDelete":
        return Health.HEALTHY, ""
    if updated < want:
        return Health.PROGRESSING, f"{updated} of {want} nodes updated"
    if available < want:
        return Health.PROGRESSING, f"{available} of {want} pods available"
    return Health.HEALTHY, ""


def _job(obj: Obj) -> Assessment:
    for kind, health in (("Failed", Health.DEGRADED), ("Complete", Health.HEALTHY)):
        condition = _condition(obj, kind)
        if condition is not None and condition.get("status") == "True":
            return health, str(condition.get("message") or condition.get("reason") or "")
    return Health.PROGRESSING, "running"


def _pvc(obj: Obj) -> Assessment:
    phase = obj.get("status", {}).get("phase")
    if phase == "Bound":
        return Health.HEALTHY, ""
    if phase == "Lost":
        return Health.DEGRADED, "the volume was lost"
    return Health.PROGRESSING, f"phase {phase or 'unknown'}"


def _service(obj: Obj) -> Assessment:
    if obj.get("spec", {}).get("type") != "LoadBalancer":
        return Health.HEALTHY, ""
    if obj.get("status", {}).get("loadBalancer", {}).get("ingress"):
        return Health.HEALTHY, ""
    return Health.PROGRESSING, "waiting for a load balancer address"


_CHECKS: dict[str, Callable[[Obj], Assessment]] = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "PersistentVolumeClaim": _pvc,
    "Service": _service,
}
