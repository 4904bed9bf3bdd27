"""Operators' requests carried out by the controller on its pass (`operator.py` records
them): a manual wave held until approved, and rollbacks of a cell or a service."""

from __future__ import annotations

import json
from collections.abc import Callable

from cellops.controller.operator import (
    APPROVAL_WAIT,
    ROLLBACKS,
    Refused,
    pending_rollbacks,
    unproven_cells,
)
from cellops.store.base import Store
from cellops.store.records import CellStep, Rollout


def hold_for_approval(store: Store, rollout: Rollout, now: float) -> None:
    """The rollout waits before its manual wave: its cells say so, and one event."""
    wave = rollout.plan[rollout.wave]
    steps = store.cell_steps(rollout.id)
    reason = f"{APPROVAL_WAIT} of wave {wave.name}"
    if all(steps[c][2] == reason for c in wave.cell_names if c in steps):
        return  # said already
    with store.transaction():
        for cell in wave.cell_names:
            store.set_cell_step(rollout.id, cell, CellStep.PENDING, reason, now)
        store.add_event(
            now,
            "approval-needed",
            f"rollout #{rollout.id} waits before wave {wave.name}:"
            f" `cellops rollout approve {wave.name}` lets it in",
            revision=rollout.revision,
            rollout=rollout.id,
        )


RollBack = Callable[[str, float, Rollout], None]


def carry_out_rollbacks(store: Store, roll_back: RollBack, now: float) -> None:
    """Each pending rollback request: its cells returned to their last good state (by
    `roll_back`, the controller's own), then the request removed."""
    for request in pending_rollbacks(store):
        cell, service = _text(request.get("cell")), _text(request.get("service"))
        try:
            cells = unproven_cells(store, cell, service)
        except Refused:
            cells = []
        for name in cells:
            rollout = _rollout_of(store, name)
            if rollout is None:
                store.add_event(now, "rollback-refused", f"{name}: no rollout gave it a revision")
                continue
            step = store.cell_steps(rollout.id)[name][1]
            if step is CellStep.FAILED:
                continue  # its rollout rolls it back already
            store.add_event(
                now,
                "operator-rollback",
                f"{name}: rolled back as {request.get('by', 'an operator')} asked",
                cell=name,
                service=service,
                rollout=rollout.id,
            )
            roll_back(name, now, rollout)
        with store.transaction():
            left = pending_rollbacks(store)
            if request in left:
                left.remove(request)
            store.set_setting(ROLLBACKS, json.dumps(left))


def _rollout_of(store: Store, cell: str) -> Rollout | None:
    """The latest rollout that planned `cell`."""
    for rollout in store.rollouts(limit=50):
        if cell in store.cell_steps(rollout.id):
            return rollout
    return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)
