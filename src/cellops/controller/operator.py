"""What an operator asks of the controller, from the CLI or the API: pause, resume, abort,
retry, approve a wave, promote (end a bake early) and roll back a cell or a service.

Each is a guarded change in the store plus the event that says so, or a request the
controller carries out on its next pass (retry, approve, promote, rollback): the
controller's own steps stay the only ones that touch cells. A request that cannot apply
is `Refused`, saying why, and changes nothing. No I/O beyond the store.
"""

from __future__ import annotations

import json
from typing import Protocol

from cellops.store.base import Store
from cellops.store.records import Phase, Rollout, RolloutState

RETRY = "rollout.retry"  # an operator asked to retry this (halted or aborted) rollout
PROMOTE = "rollout.promote"  # "<rollout>:<wave>": end that wave's bake on the next pass
ROLLBACKS = "operator.rollbacks"  # JSON list of {"cell"|"service", "at"} to carry out
APPROVAL_WAIT = "waiting for approval"  # the reason of a manual wave's cells until approved


def approved_key(rollout: int, wave: str) -> str:
    return f"rollout.{rollout}.approved.{wave}"


class HasSettings(Protocol):
    def setting(self, key: str) -> str | None: ...


class Refused(Exception):
    """Not done: `kind` is "none" (nothing to act on), "conflict" (not in this state) or
    "unknown" (no such cell, service or wave)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def running(store: Store) -> Rollout:
    rollout = store.active_rollout()
    if rollout is None:
        raise Refused("none", "no rollout is running")
    return rollout


def steer(store: Store, what: str, now: float, by: str = "an operator") -> str:
    """`pause`, `resume` or `abort` the running rollout; what was recorded."""
    rollout = running(store)
    with store.transaction():
        # guarded: a rollout that ended meanwhile (completed, halted) is never overwritten
        if what == "abort":
            changed = store.update_rollout(
                rollout.id,
                now,
                if_state=RolloutState.RUNNING,
                state=RolloutState.ABORTED,
                reason=f"aborted by {by}",
            )
            if changed:
                store.close_steps(rollout.id, now)
        else:
            changed = store.update_rollout(
                rollout.id, now, if_state=RolloutState.RUNNING, paused=int(what == "pause")
            )
        if changed:
            store.add_event(
                now,
                f"rollout-{what}",
                f"rollout #{rollout.id} {what} by {by}",
                revision=rollout.revision,
                rollout=rollout.id,
            )
    if not changed:
        ended = store.rollout(rollout.id)
        raise Refused(
            "conflict",
            f"rollout #{rollout.id} ended meanwhile ({ended.state if ended else 'gone'});"
            " nothing changed",
        )
    return f"rollout #{rollout.id} of {rollout.revision[:12]}: {what} recorded"


def retry(store: Store, now: float, by: str = "an operator") -> str:
    latest = store.rollouts(limit=1)
    rollout = latest[0] if latest else None
    if rollout is None or rollout.state not in (RolloutState.HALTED, RolloutState.ABORTED):
        what = f"the latest rollout is {rollout.state}" if rollout else "there is no rollout"
        raise Refused("none", f"nothing to retry: {what}")
    with store.transaction():
        store.set_setting(RETRY, str(rollout.id))
        store.add_event(
            now,
            "rollout-retry",
            f"retry of rollout #{rollout.id} requested by {by}",
            revision=rollout.revision,
            rollout=rollout.id,
        )
    return (
        f"retry of rollout #{rollout.id} of {rollout.revision[:12]} requested;"
        " the controller starts it on its next pass"
    )


def approve(store: Store, now: float, wave: str | None = None, by: str = "an operator") -> str:
    """Let the running rollout enter `wave` (default: the manual wave it waits at, or the
    next manual one)."""
    rollout = running(store)
    names = [
        w.name
        for index, w in enumerate(rollout.plan.waves)
        if w.approval == "manual"
        and w.batch == 1
        and (index > rollout.wave or (index == rollout.wave and rollout.phase is Phase.APPLY))
        and store.setting(approved_key(rollout.id, w.name)) is None
    ]
    if wave is None:
        if not names:
            raise Refused("none", f"rollout #{rollout.id} has no wave left that needs approval")
        wave = names[0]
    elif wave not in names:
        known = {w.name for w in rollout.plan.waves}
        if wave not in known:
            raise Refused(
                "unknown",
                f"rollout #{rollout.id} has no wave {wave!r}: it has {', '.join(sorted(known))}",
            )
        raise Refused(
            "conflict",
            f"wave {wave} of rollout #{rollout.id} needs no approval (not `approval: manual`,"
            " approved already, or entered)",
        )
    with store.transaction():
        store.set_setting(approved_key(rollout.id, wave), json.dumps({"by": by, "at": now}))
        store.add_event(
            now,
            "wave-approved",
            f"wave {wave} of rollout #{rollout.id} approved by {by}",
            revision=rollout.revision,
            rollout=rollout.id,
        )
    return (
        f"wave {wave} of rollout #{rollout.id} approved; the controller enters it on its next pass"
    )


def needs_approval(store: HasSettings, rollout: Rollout) -> bool:
    """The rollout is about to enter a manual wave (its first batch) not approved yet."""
    if not rollout.active or rollout.wave >= len(rollout.plan):
        return False
    wave = rollout.plan[rollout.wave]
    if wave.approval != "manual" or wave.batch != 1:
        return False
    return store.setting(approved_key(rollout.id, wave.name)) is None


def promote(store: Store, now: float, by: str = "an operator") -> str:
    """End the running rollout's current bake early: its wave is done on the controller's
    next look that finds every cell of it healthy."""
    rollout = running(store)
    if rollout.paused:
        raise Refused("conflict", f"rollout #{rollout.id} is paused: resume it first")
    if rollout.wave >= len(rollout.plan):
        raise Refused("none", f"rollout #{rollout.id} has no wave left to promote")
    name = rollout.plan[rollout.wave].name
    with store.transaction():
        store.set_setting(PROMOTE, f"{rollout.id}:{rollout.wave}")
        store.add_event(
            now,
            "promote-requested",
            f"wave {name} of rollout #{rollout.id} promoted by {by}: its bake ends early",
            revision=rollout.revision,
            rollout=rollout.id,
        )
    return (
        f"wave {name} of rollout #{rollout.id} promoted; it is done once every cell of it"
        " is seen healthy"
    )


def promoted(store: HasSettings, rollout: Rollout) -> bool:
    return store.setting(PROMOTE) == f"{rollout.id}:{rollout.wave}"


def unproven_cells(store: Store, cell: str | None, service: str | None) -> list[str]:
    """Cells that hold a state not proven good: for `cell`, or where `service` is."""
    rows = store.ledger_rows(cell)
    if cell is not None and not rows:
        raise Refused("unknown", f"no cell {cell} in the ledger: it was never applied")
    if service is not None and not any(r.service == service for r in rows):
        raise Refused("unknown", f"no service {service} in the ledger")
    return sorted(
        {
            r.cell
            for r in rows
            if (service is None or r.service == service) and r.applied_hash != r.good_hash
        }
    )


def rollback(
    store: Store,
    now: float,
    *,
    cell: str | None = None,
    service: str | None = None,
    by: str = "an operator",
) -> str:
    """Ask the controller to return `cell` (or each cell where `service` is unproven) to
    its last good state."""
    if (cell is None) == (service is None):
        raise Refused("unknown", "name a cell, or a service (--service)")
    cells = unproven_cells(store, cell, service)
    what = f"cell {cell}" if cell else f"service {service}"
    if not cells:
        raise Refused("none", f"{what} already runs its last good revision: nothing to roll back")
    with store.transaction():
        pending = pending_rollbacks(store)
        pending.append({"cell": cell, "service": service, "at": now, "by": by})
        store.set_setting(ROLLBACKS, json.dumps(pending))
        store.add_event(
            now,
            "rollback-requested",
            f"rollback of {what} ({', '.join(cells)}) requested by {by}",
            cell=cell,
            service=service,
        )
    return (
        f"rollback of {what} requested ({len(cells)} cell(s));"
        " the controller does it on its next pass"
    )


def pending_rollbacks(store: Store) -> list[dict[str, object]]:
    text = store.setting(ROLLBACKS)
    found = json.loads(text) if text else []
    return found if isinstance(found, list) else []
