"""A scripted backend for component tests of the controller: cells are dictionaries, and a
test decides which versions become healthy, which degrade, and when a call 'crashes'.

It implements the same port as the real backends; it stands in for them only where a test
needs exact interleavings (a crash between two particular steps) or fake time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cellops.backends.base import CellObservation, ServiceObservation
from cellops.health import Health
from cellops.model.errors import BackendError
from cellops.render import DesiredCell, DesiredService
from cellops.render.hashing import canonical_json, content_hash


class Crash(Exception):
    """Raised where a test wants the controller to die."""


@dataclass
class FakeCell:
    services: dict[str, str] = field(default_factory=dict)  # service -> hash it runs
    document: str | None = None
    applies: int = 0


@dataclass
class FakeBackend:
    # (cell, service, hash) -> health once applied; default: healthy at once
    health: Callable[[str, str, str], Health] = lambda cell, service, hash_: Health.HEALTHY
    # (cell, how many applies this cell has seen) -> crash before / after the change is made
    crash_on_apply: Callable[[str, int], bool] = lambda cell, count: False
    crash_after_apply: Callable[[str, int], bool] = lambda cell, count: False
    # (cell, how many applies) -> an error the backend reports instead (an API server down)
    refuse_apply: Callable[[str, int], BackendError | None] = lambda cell, count: None
    cells: dict[str, FakeCell] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    resync: float = 0.0

    def ensure(self, cell: DesiredCell) -> bool:
        self.calls.append(("ensure", cell.name))
        if cell.name in self.cells:
            return False
        self.cells[cell.name] = FakeCell()
        return True

    def apply(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        state = self.cells.setdefault(cell.name, FakeCell())
        document = content_hash(canonical_json({n: s.hash for n, s in services.items()}))
        state.applies += 1
        if self.crash_on_apply(cell.name, state.applies):
            raise Crash(f"crash while applying {cell.name}")
        if (refused := self.refuse_apply(cell.name, state.applies)) is not None:
            raise refused
        state.services = {name: s.hash for name, s in services.items()}
        state.document = document
        self.calls.append(("apply", cell.name))
        if self.crash_after_apply(cell.name, state.applies):
            raise Crash(f"crash after applying {cell.name}")
        return document

    def observe(self, cell: str) -> CellObservation:
        self.calls.append(("observe", cell))
        state = self.cells.get(cell)
        if state is None:
            return CellObservation(cell, reachable=False, reason="no such cell")
        services = {
            name: ServiceObservation(name, hash_, self.health(cell, name, hash_), 1, 1)
            for name, hash_ in state.services.items()
        }
        return CellObservation(cell, True, services, applied=state.document, desired=state.document)

    def delete(self, cell: str) -> None:
        self.cells.pop(cell, None)
        self.calls.append(("delete", cell))

    def close(self) -> None:
        """Nothing to release."""
