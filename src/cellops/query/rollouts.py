"""Rollouts: the plan, its waves, each cell's step, and why the rollout waits."""

from __future__ import annotations

from typing import Any

from cellops.controller.operator import APPROVAL_WAIT, PROMOTE, approved_key, needs_approval
from cellops.query.base import ReadStore, iso
from cellops.store.planrecord import WaveRecord
from cellops.store.records import CellStep, Phase, Rollout

WAITING_STEPS = (CellStep.PENDING, CellStep.APPLIED)


def rollouts(store: ReadStore, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first, without their cells."""
    return [summary(r) for r in store.rollouts(limit)]


def summary(rollout: Rollout) -> dict[str, Any]:
    current = rollout.plan[rollout.wave] if rollout.wave < len(rollout.plan) else None
    return {
        "id": rollout.id,
        "revision": rollout.revision,
        "base": rollout.base,
        "state": str(rollout.state),
        "paused": rollout.paused,
        "reason": rollout.reason,
        "wave": rollout.wave,
        "waves": len(rollout.plan),
        "wave_name": current.name if current is not None else None,
        "phase": str(rollout.phase),
        "failures": rollout.failures,
        "created_at": iso(rollout.created_at),
        "updated_at": iso(rollout.updated_at),
    }


def rollout(store: ReadStore, rollout_id: int | None = None) -> dict[str, Any] | None:
    """One rollout (default: the latest) whole: its waves, each cell's step and reason,
    its policy, and why it waits."""
    if rollout_id is None:
        found = store.rollouts(limit=1)
        record = found[0] if found else None
    else:
        record = store.rollout(rollout_id)
    if record is None:
        return None
    steps = store.cell_steps(record.id)
    policy = record.plan.policy
    return {
        **summary(record),
        "waiting": waiting(store, record, steps),
        "policy": None
        if policy is None
        else {
            "progress_deadline": policy.progress_deadline,
            "failure_budget": policy.failure_budget,
            "on_failure": policy.on_failure,
            "bake_grace": policy.bake_grace,
        },
        "plan": [
            _wave(store, record, index, wave, steps) for index, wave in enumerate(record.plan.waves)
        ],
    }


def _wave(
    store: ReadStore,
    rollout: Rollout,
    index: int,
    wave: WaveRecord,
    steps: dict[str, tuple[int, CellStep, str]],
) -> dict[str, Any]:
    if index < rollout.wave:
        status = "done"
    elif index == rollout.wave and rollout.active:
        status = "current"
    else:
        status = "pending" if rollout.active else "not-reached"
    approved = (
        store.setting(approved_key(rollout.id, wave.name)) is not None
        if wave.approval == "manual"
        else None
    )
    return {
        "index": index,
        "name": wave.name,
        "batch": wave.batch,
        "batches": wave.batches,
        "canary": wave.canary,
        "bake_seconds": wave.bake_seconds,
        "approval": wave.approval,
        "approved": approved,
        "status": status,
        "cells": [
            {
                "cell": planned.cell,
                "step": str(steps.get(planned.cell, (index, CellStep.PENDING, ""))[1]),
                "reason": steps.get(planned.cell, (index, CellStep.PENDING, ""))[2],
                "changes": [{"service": s, "action": a} for s, a in planned.changes],
            }
            for planned in wave.cells
        ],
    }


def waiting(store: ReadStore, rollout: Rollout, steps: dict[str, tuple[int, CellStep, str]]) -> str:
    """Why the rollout does not move on now, in words; '' when it is not waiting."""
    if not rollout.active:
        return rollout.reason
    if rollout.paused:
        return "paused by an operator: `cellops rollout resume` goes on"
    if rollout.wave >= len(rollout.plan):
        return "finishing"
    wave = rollout.plan[rollout.wave]
    cells = wave.cell_names
    name = f"wave {wave.name}" + (
        f" (batch {wave.batch}/{wave.batches})" if wave.batches > 1 else ""
    )
    if rollout.phase is Phase.APPLY:
        if needs_approval(store, rollout):
            return f"{name}: {APPROVAL_WAIT} (`cellops rollout approve {wave.name}`)"
        return f"{name}: applying to {len(cells)} cell(s)"
    behind = [c for c in cells if c in steps and steps[c][1] in WAITING_STEPS]
    if rollout.phase is Phase.PROGRESS or behind:
        deadline = rollout.plan.policy.progress_deadline if rollout.plan.policy else None
        limit = f" of {deadline:.0f}s" if deadline is not None else ""
        return (
            f"{name}: waiting for {', '.join(behind) or 'its cells'} to be healthy at"
            f" {rollout.revision[:12]} ({rollout.elapsed:.0f}s{limit} progress deadline)"
        )
    promoted = store.setting(PROMOTE) == f"{rollout.id}:{rollout.wave}"
    early = "; promoted: ends at the next look that finds every cell healthy" if promoted else ""
    return f"{name}: baking, {rollout.baked:.0f}s of {wave.bake_seconds:.0f}s healthy{early}"
