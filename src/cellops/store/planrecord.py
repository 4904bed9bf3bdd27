"""The plan a rollout follows, as the store keeps it: typed, and complete enough that the
rollout never needs Git again to know its waves or its failure policy (a force-push and a
`git gc` may remove the commit it rolls out)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PolicyRecord:
    """The failure policy of the revision being rolled out."""

    progress_deadline: float = 300.0  # seconds a cell has to become healthy (paused time excluded)
    failure_budget: int = 0  # failed cells tolerated from the second wave on; the canary's is 0
    on_failure: str = "rollback"  # or "halt": the failed cell is left as it is, supervised
    bake_grace: float | None = None  # seconds a baking cell may be unhealthy; None: from probes


@dataclass(frozen=True)
class PlannedCellRecord:
    cell: str
    changes: tuple[tuple[str, str], ...]  # (service, action), in apply order


@dataclass(frozen=True)
class WaveRecord:
    name: str
    batch: int
    batches: int
    canary: bool
    bake_seconds: float
    cells: tuple[PlannedCellRecord, ...]
    approval: str = "auto"  # "manual": the rollout enters it only once an operator approved

    @property
    def cell_names(self) -> list[str]:
        return [c.cell for c in self.cells]


@dataclass(frozen=True)
class PlanRecord:
    waves: tuple[WaveRecord, ...]
    policy: PolicyRecord | None  # None in rollouts stored by earlier versions

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, index: int) -> WaveRecord:
        return self.waves[index]

    def is_canary(self, wave: int) -> bool:
        """The first wave, and every batch of a declared canary wave: no failure tolerated."""
        if not 0 <= wave < len(self.waves):
            return False
        return wave == 0 or self.waves[wave].canary or self.waves[wave].name == self.waves[0].name

    def to_json(self) -> str:
        policy = self.policy
        return json.dumps(
            {
                "waves": [_wave_json(w) for w in self.waves],
                "policy": None
                if policy is None
                else {
                    "progressDeadline": policy.progress_deadline,
                    "failureBudget": policy.failure_budget,
                    "onFailure": policy.on_failure,
                    "bakeGrace": policy.bake_grace,
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PlanRecord:
        """Also reads the untyped list of waves that earlier versions stored (without a
        policy: the controller then reads it from the revision)."""
        data: Any = json.loads(text)
        waves = data if isinstance(data, list) else data["waves"]
        raw = None if isinstance(data, list) else data.get("policy")
        return cls(tuple(_wave(w) for w in waves), None if raw is None else _policy(raw))


def _policy(raw: dict[str, Any]) -> PolicyRecord:
    grace = raw.get("bakeGrace")
    return PolicyRecord(
        progress_deadline=float(raw["progressDeadline"]),
        failure_budget=int(raw["failureBudget"]),
        on_failure=str(raw["onFailure"]),
        bake_grace=None if grace is None else float(grace),
    )


def _wave_json(wave: WaveRecord) -> dict[str, object]:
    return {
        "name": wave.name,
        "batch": wave.batch,
        "batches": wave.batches,
        "canary": wave.canary,
        "bakeSeconds": wave.bake_seconds,
        "approval": wave.approval,
        "cells": [
            {"cell": c.cell, "changes": [{"service": s, "action": a} for s, a in c.changes]}
            for c in wave.cells
        ],
    }


def _wave(data: dict[str, Any]) -> WaveRecord:
    return WaveRecord(
        name=str(data["name"]),
        batch=int(data.get("batch", 1)),
        batches=int(data.get("batches", 1)),
        canary=bool(data.get("canary", False)),
        bake_seconds=float(data.get("bakeSeconds", 0)),
        approval=str(data.get("approval", "auto")),
        cells=tuple(
            PlannedCellRecord(
                str(c["cell"]),
                tuple((str(ch["service"]), str(ch["action"])) for ch in c.get("changes", [])),
            )
            for c in data["cells"]
        ),
    )
