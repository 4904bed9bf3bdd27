"""Rows the store keeps, as plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cellops.store.planrecord import PlanRecord


class RolloutState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    HALTED = "halted"  # a cell failed beyond the failure budget; no further cell changes
    SUPERSEDED = "superseded"  # a newer revision took over
    ABORTED = "aborted"  # stopped by an operator


class Phase(StrEnum):
    APPLY = "apply"  # the current wave is being applied
    PROGRESS = "progress"  # waiting for its cells to be healthy at the new revision
    BAKE = "bake"  # healthy; must stay so for the wave's bake time


class CellStep(StrEnum):
    """A cell's step in one rollout. The first five move on; the rest are terminal."""

    PENDING = "pending"  # not given the revision yet
    APPLIED = "applied"  # given it; not yet seen healthy at it
    HEALTHY = "healthy"  # seen healthy at it; baking (terminal when the rollout stopped)
    FAILED = "failed"  # failed; its rollback is due (or pending: the backend did not answer)
    ROLLED_BACK = "rolled-back"  # back on its last good state; not yet seen healthy there
    GOOD = "good"  # baked: the revision is the cell's last good state
    RECOVERED = "recovered"  # rolled back and seen healthy on its last good state
    KEPT = "kept"  # failed and left as it is (onFailure: halt, or no known good state)
    ROLLBACK_FAILED = "rollback-failed"  # the rollback was refused; an operator must act
    SKIPPED = "skipped"  # never given the revision: the rollout stopped first
    REMOVED = "removed"  # the cell left the fleet and was torn down
    HANDED_OVER = "handed-over"  # holds the revision unproven; a newer rollout took over

    @property
    def failed(self) -> bool:
        """Counts against the failure budget."""
        return self in _FAILED


_FAILED = frozenset(
    {
        CellStep.FAILED,
        CellStep.ROLLED_BACK,
        CellStep.RECOVERED,
        CellStep.KEPT,
        CellStep.ROLLBACK_FAILED,
    }
)


@dataclass(frozen=True)
class RevisionRecord:
    id: str
    accepted: bool
    message: str
    problems: list[dict[str, object]]
    seen_at: float
    committed_at: float | None = None  # the commit's own time, when known


@dataclass(frozen=True)
class LedgerRow:
    """Per cell and service. `applied_hash` None: deleted from the cell, kept until good so a
    rollback can bring it back."""

    cell: str
    service: str
    applied_rev: str | None
    applied_hash: str | None
    healthy_rev: str | None
    good_rev: str | None
    good_hash: str | None
    depends_on: tuple[str, ...]
    updated_at: float = 0.0
    applied_spec: str | None = None  # the service as applied, rendered (JSON)
    good_spec: str | None = None  # the service in its last good state, rendered (JSON)

    @property
    def hash(self) -> str:  # the `Applied` protocol of the diff
        return self.applied_hash or ""


@dataclass(frozen=True)
class Rollout:
    id: int
    revision: str
    base: str | None
    state: RolloutState
    plan: PlanRecord
    wave: int
    phase: Phase
    phase_started: float  # wall time the phase began (for people; the gate uses `elapsed`)
    elapsed: float  # seconds of this phase the controller saw go by, not paused
    baked: float  # seconds of the bake phase every cell of the wave was seen healthy
    failures: int
    paused: bool
    reason: str
    created_at: float
    updated_at: float

    @property
    def active(self) -> bool:
        return self.state is RolloutState.RUNNING


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    kind: str
    message: str
    cell: str | None = None
    service: str | None = None
    revision: str | None = None
    rollout: int | None = None


@dataclass(frozen=True)
class InventoryItem:
    """One object a Kubernetes cell holds because cellops applied it.

    key: "<apiVersion> <kind> <namespace> <name>". rank: its place in apply order (prune
    goes in reverse). hash: what was last sent; "pending:<previous hash>" while a send is
    in flight, so an object is tracked before it can exist and a crash never orphans it.
    body: the object
    as sent (JSON), the reference drift is measured against; a Secret's values are not
    kept, only its key names and a digest of the values. cluster: where it lives
    (kubeconfig and context, JSON): part of the identity, so a cell moved to another
    cluster is created there first and then pruned in the old one.

    origin: CREATED, or ADOPTED when the object was there before cellops first applied
    it (a takeover); found: then the object as it was found (JSON, without status and
    what the server sets), which prune never deletes and a rollback restores.
    """

    key: str
    rank: int
    hash: str | None
    body: str
    cluster: str
    origin: str = "created"
    found: str | None = None

    @property
    def adopted(self) -> bool:
        return self.origin == ADOPTED


CREATED, ADOPTED = "created", "adopted"  # InventoryItem.origin
