"""The health gate of a rollout: is a cell healthy at the revision being rolled out, and
if not, has it failed yet? Pure decisions over an observation, the time the controller has
seen go by, and the policy.

Time here is never a difference of wall clocks: `elapsed` is the time of the phase the
controller observed (a stopped controller and a paused rollout do not count), and a
baking cell fails on evidence, not on one sample: degraded (its replicas failed their
probes' own thresholds: crash loop, liveness), or unhealthy for longer than a grace.
"""

from __future__ import annotations

from collections.abc import Mapping

from cellops.backends.base import CellObservation
from cellops.health import Health
from cellops.render import DesiredCell
from cellops.store.planrecord import PolicyRecord
from cellops.store.records import CellStep, Phase, Rollout

NO_GOOD_STATE = "no known good state"  # a rollback would empty the cell: it is kept
RolloutPolicyView = PolicyRecord  # the name the controller used before the plan was typed

MAX_GAP = 5.0  # seconds between two looks counted at most: longer, the controller was away
NO_PROBE_GRACE = 30.0  # Kubernetes' probe defaults: periodSeconds 10 x failureThreshold 3


def healthy(seen: CellObservation, target: DesiredCell) -> bool:
    return seen.reachable and all(
        seen.healthy_at(name, service.hash) for name, service in target.services.items()
    )


def bake_grace(target: DesiredCell, policy: PolicyRecord) -> float:
    """How long a baking cell may be seen unhealthy before it fails: the fleet's
    `bakeGrace`, else the longest a probe of its services takes to give up (one period x
    failureThreshold, readiness first), else Kubernetes' defaults."""
    if policy.bake_grace is not None:
        return policy.bake_grace
    longest = 0.0
    for service in target.services.values():
        probes = service.spec.probes
        probe = probes.readiness or probes.liveness if probes is not None else None
        if probe is not None:
            longest = max(longest, float(probe.period_seconds * probe.failure_threshold))
    return longest or NO_PROBE_GRACE


def failure(
    seen: CellObservation,
    target: DesiredCell,
    step: CellStep,
    *,
    phase: Phase,
    elapsed: float,
    unhealthy_for: float,
    policy: PolicyRecord,
    unanswered_for: float = 0.0,
    restarted: tuple[str, ...] = (),
) -> str:
    """Why the cell counts as failed now, or '' if it still has time.

    elapsed: seconds of the current phase observed by the controller, paused time
    excluded. unhealthy_for / unanswered_for: seconds of this bake the cell was seen
    unhealthy / did not answer (in all, not only in a row: a cell flapping through its
    bake fails). restarted: services whose replicas restarted since the bake began."""
    degraded = [
        s
        for s in target.services
        if (o := seen.services.get(s)) is not None and o.health is Health.DEGRADED
    ]
    if step is CellStep.HEALTHY and phase is Phase.BAKE:
        if not seen.reachable:  # an agent restarting, an API server away: not evidence,
            if unanswered_for <= policy.progress_deadline:  # unless it lasts
                return ""
            return f"did not answer for {unanswered_for:.0f}s during bake: " + why(seen, target)
        if degraded:
            return "degraded during bake: " + why(seen, target)
        if restarted:
            return f"{', '.join(restarted)} restarted during bake"
        grace = bake_grace(target, policy)
        if unhealthy_for > grace:
            return f"unhealthy for {unhealthy_for:.0f}s during bake (grace {grace:.0f}s): " + why(
                seen, target
            )
        return ""
    if degraded:
        return why(seen, target)
    if elapsed > policy.progress_deadline:
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


def halt_reason(
    rollout: Rollout, steps: Mapping[str, tuple[int, CellStep, str]], policy: PolicyRecord
) -> str:
    """Why the rollout must stop now, or '' while it may go on."""
    failed = {c: wave for c, (wave, step, _) in steps.items() if step.failed}
    stuck = sorted(
        c for c, (_, step, why) in steps.items() if step is CellStep.KEPT and NO_GOOD_STATE in why
    )
    if stuck:
        return f"{', '.join(stuck)} failed with {NO_GOOD_STATE} to roll back to"
    canary = sorted(c for c, wave in failed.items() if rollout.plan.is_canary(wave))
    if canary:
        return f"{', '.join(canary)} failed in the canary wave, which tolerates no failure"
    if len(failed) > policy.failure_budget:
        return (
            f"{', '.join(sorted(failed))} failed, beyond the failure budget"
            f" ({policy.failure_budget})"
        )
    return ""


def failure_summary(failed: Mapping[str, CellStep]) -> str:
    """'eu-2 rolled back; us-1 kept': what became of each failed cell."""
    words = {
        CellStep.ROLLED_BACK: "rolled back",
        CellStep.RECOVERED: "rolled back",
        CellStep.KEPT: "kept as it is",
        CellStep.ROLLBACK_FAILED: "rollback failed",
        CellStep.FAILED: "rollback pending",
    }
    by_word: dict[str, list[str]] = {}
    for cell, step in sorted(failed.items()):
        by_word.setdefault(words[step], []).append(cell)
    return "; ".join(f"{', '.join(cells)} {word}" for word, cells in by_word.items())
