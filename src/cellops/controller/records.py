"""A plan and its policy as the rollout keeps them in the store (`store.planrecord`)."""

from __future__ import annotations

from cellops.plan import Plan
from cellops.spec.fleet import RolloutPolicy
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, PolicyRecord, WaveRecord


def policy_record(policy: RolloutPolicy) -> PolicyRecord:
    return PolicyRecord(
        progress_deadline=policy.progress_deadline,
        failure_budget=policy.failure_budget,
        on_failure=policy.on_failure,
        bake_grace=policy.bake_grace,
    )


def plan_record(plan: Plan, policy: PolicyRecord) -> PlanRecord:
    approval = {w.name: w.approval for w in plan.policy.waves}  # the remainder's: auto
    return PlanRecord(
        waves=tuple(
            WaveRecord(
                name=wave.name,
                batch=wave.batch,
                batches=wave.batches,
                canary=wave.canary,
                bake_seconds=wave.bake,
                approval=approval.get(wave.name, "auto"),
                cells=tuple(
                    PlannedCellRecord(
                        c.cell, tuple((ch.service, str(ch.action)) for ch in c.changes)
                    )
                    for c in wave.cells
                ),
            )
            for wave in plan.waves
        ),
        policy=policy,
    )
