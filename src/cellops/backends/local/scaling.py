"""The rolling update of one service in one cell, as a Deployment controller does it:
start new replicas within `maxSurge`, stop old ones while `maxUnavailable` allows, so a
cell keeps serving while it moves to a new version, and keeps the old version serving when
the new one never becomes ready. A pure decision: the agent carries it out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaView:
    id: str
    hash: str
    ready: bool


@dataclass(frozen=True)
class Decision:
    start: int  # new replicas to start at the desired version
    stop: tuple[str, ...]  # replicas to stop


def decide(
    desired_hash: str,
    want: int,
    max_surge: int,
    max_unavailable: int,
    replicas: list[ReplicaView],
) -> Decision:
    """`replicas` are the live ones (not already stopping)."""
    new = sorted((r for r in replicas if r.hash == desired_hash), key=lambda r: (r.ready, r.id))
    old = sorted((r for r in replicas if r.hash != desired_hash), key=lambda r: (r.ready, r.id))
    stop: list[str] = []
    if len(new) > want:  # scale down: unready first
        extra = len(new) - want
        stop += [r.id for r in new[:extra]]
        new = new[extra:]
    room = want + max_surge - len(new) - len(old)
    start = max(0, min(want - len(new), room))
    available = sum(r.ready for r in new) + sum(r.ready for r in old)
    floor = want - max_unavailable
    for replica in old:
        if not replica.ready:
            stop.append(replica.id)  # serves nothing: no cost to availability
        elif available - 1 >= floor:
            stop.append(replica.id)
            available -= 1
    return Decision(start, tuple(stop))
