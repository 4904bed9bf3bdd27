"""A controller store with a fleet in it, and the API served on it by a real uvicorn on
127.0.0.1 (a port the OS picks): for the API tests and bench/api.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cellops.api.app import create_app
from cellops.api.context import ApiContext
from cellops.api.listener import Listener
from cellops.backends.base import CellObservation, ServiceObservation
from cellops.health import Health
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, PolicyRecord, WaveRecord
from cellops.store.records import CellStep, Phase, RevisionRecord
from cellops.store.sqlite import SqliteStore
from cellops.store.tokens import Role

GOOD, NEW, BAD = "a" * 40, "b" * 40, "c" * 40


def cell_names(count: int) -> list[str]:
    return [f"cell-{i:04d}" for i in range(count)]


def populate(
    store: SqliteStore,
    cells: int = 6,
    services: int = 2,
    *,
    now: float = 0.0,
    spec: str | None = None,
    changed: int | None = None,
) -> int:
    """A fleet on GOOD everywhere, NEW rolling out (canary done, `rest` waiting for its
    manual approval), BAD rejected; the running rollout's id. `spec`: each service as
    rendered (what makes a real ledger row big); `changed`: services the new
    revision changes in each cell (default: all)."""
    now = now or time.time() - 600
    names = cell_names(cells)
    with store.transaction():
        store.record_revision(RevisionRecord(GOOD, True, "first release", [], now - 300))
        store.record_revision(RevisionRecord(NEW, True, "second release", [], now - 60))
        problem = {
            "file": "services/web.yaml",
            "line": 7,
            "field": "spec.replicas",
            "message": "expected an integer",
            "severity": "error",
        }
        store.record_revision(RevisionRecord(BAD, False, "", [problem], now - 30))
        store.set_setting("fleet.current", NEW)
        for cell in names:
            for index in range(services):
                service = f"svc-{index:02d}"
                store.set_applied(
                    cell,
                    service,
                    rev=GOOD,
                    hash_=f"h-{service}",
                    depends_on=(),
                    now=now - 300,
                    spec=spec,
                )
                store.set_healthy(cell, service, GOOD, now - 290)
            store.set_good(cell, now - 280)
    canary, rest = names[:1], names[1:]
    plan = PlanRecord(
        waves=(
            _wave("canary", canary, changed or services, canary=True),
            _wave("rest", rest, changed or services, approval="manual"),
        ),
        policy=PolicyRecord(progress_deadline=120.0),
    )
    rollout = store.create_rollout(NEW, GOOD, plan, now - 60)
    with store.transaction():
        for cell in canary:
            for index in range(services):
                service = f"svc-{index:02d}"
                store.set_applied(
                    cell, service, rev=NEW, hash_=f"n-{service}", depends_on=(), now=now - 50
                )
            store.set_good(cell, now - 20)
            store.set_cell_step(rollout, cell, CellStep.GOOD, "", now - 20)
        store.update_rollout(rollout, now - 20, wave=1, phase=Phase.APPLY)
        for at, kind, cell in (
            (now - 60, "rollout-started", None),
            (now - 50, "applied", canary[0]),
            (now - 30, "revision-rejected", None),
            (now - 20, "wave-done", None),
        ):
            store.add_event(
                at,
                kind,
                f"{kind} {cell or ''}".strip(),
                cell=cell,
                rollout=rollout,
                revision=BAD if kind == "revision-rejected" else NEW,
            )
    return rollout


def _wave(
    name: str, cells: list[str], services: int, *, canary: bool = False, approval: str = "auto"
) -> WaveRecord:
    changes = tuple((f"svc-{i:02d}", "changed") for i in range(services))
    return WaveRecord(
        name, 1, 1, canary, 30.0, tuple(PlannedCellRecord(c, changes) for c in cells), approval
    )


def healthy(cell: str) -> CellObservation:
    """Every service healthy, at whatever it runs (the ledger's hash: fake, so 'mixed')."""
    return CellObservation(
        cell,
        True,
        {
            f"svc-{i:02d}": ServiceObservation(f"svc-{i:02d}", None, Health.HEALTHY, 2, 2)
            for i in range(2)
        },
    )


@dataclass
class Api:
    url: str
    store: SqliteStore
    viewer: str
    operator: str
    wakes: list[int]

    def headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}


@contextlib.contextmanager
def serve(state: Path, populate_with: tuple[int, int] | None = (6, 2)) -> Iterator[Api]:
    """The API on the store in `state` (populated unless None), with a viewer and an
    operator token."""
    store = SqliteStore(state / "cellops.db")
    if populate_with is not None:
        populate(store, *populate_with)
    _, viewer = store.create_token("test-viewer", Role.VIEWER, time.time())
    _, operator = store.create_token("test-operator", Role.OPERATOR, time.time())
    wakes: list[int] = []
    ctx = ApiContext(
        store,
        observe=healthy,
        wake=lambda: wakes.append(1),
        reader=SqliteStore(state / "cellops.db"),
        live=SqliteStore(state / "cellops.db"),
    )
    ctx.state["state_dir"] = state  # as `cellops up` serves it (image verdicts, log tails)
    listener = Listener(create_app(ctx), "127.0.0.1", 0)
    port = listener.start()
    try:
        yield Api(f"http://127.0.0.1:{port}", store, viewer, operator, wakes)
    finally:
        listener.stop()
        ctx.close()
