"""The health gate of a rollout: is a cell healthy at the revision being rolled out, and
if not, has it failed yet? Pure decisions over an observation, the time and the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellops.backends.base import CellObservation
from cellops.health import Health
from cellops.render import DesiredCell
from cellops.store.records import CellStep, Phase, Rollout


@dataclass(frozen=True)
class RolloutPolicyView:
    progress_deadline: float
    failure_budget: int
    on_failure: str


def healthy(seen: CellObservation, target: DesiredCell) -> bool:
    return seen.reachable and all(
        seen.healthy_at(name, service.hash) for name, service in target.services.items()
    )


def failure(
    seen: CellObservation,
    target: DesiredCell,
    rollout: Rollout,
    step: CellStep,
    *,
    now: float,
    policy: RolloutPolicyView,
) -> str:
    """Why the cell counts as failed now, or '' if it still has time."""
    if step is CellStep.HEALTHY and rollout.phase is Phase.BAKE:
        if not seen.reachable:
            return ""  # no news is not bad news: the agent restarts, the cell keeps serving
        return "unhealthy during bake: " + why(seen, target)
    degraded = [
        s
        for s in target.services
        if (o := seen.services.get(s)) is not None and o.health is Health.DEGRADED
    ]
    if degraded:
        return why(seen, target)
    if now - rollout.phase_started > policy.progress_deadline:
        return (
            f"not healthy within the progress deadline ({policy.progress_deadline:.0f}s): "
            + why(seen, target)
        )
    return ""


def why(seen: CellObservation, target: DesiredCell) -> str:
    if not seen.reachable:
        return seen.reason or "the cell does not answer"
    parts = []
    for name, service in target.services.items():
        observed = seen.services.get(name)
        if observed is None:
            parts.append(f"{name} missing")
        elif not seen.healthy_at(name, service.hash):
            parts.append(f"{name} {observed.health}: {observed.reason}".rstrip(": "))
    return "; ".join(parts) or "unhealthy"
