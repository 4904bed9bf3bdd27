"""The backend port: the only code that touches the world implements this.

One instance serves every cell of its kind. All methods are idempotent: applying the same
desired state twice changes nothing the second time, so a controller that died between
"apply" and "record" can simply apply again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cellops.health import Health

if TYPE_CHECKING:  # the port's types: observing a cell never loads the renderer
    from cellops.render import DesiredCell, DesiredService


@dataclass(frozen=True)
class ServiceObservation:
    """One service in one cell as last seen."""

    service: str
    hash: str | None  # the version all replicas run; None when mixed or none
    health: Health
    ready: int
    desired: int
    restarts: int = 0
    reason: str = ""


@dataclass(frozen=True)
class DriftRepair:
    """Something changed by hand or by accident, and put back."""

    service: str
    what: str


@dataclass(frozen=True)
class CellObservation:
    cell: str
    reachable: bool  # the cell's agent (or API server) answered recently
    services: Mapping[str, ServiceObservation] = field(default_factory=dict)
    applied: str | None = None  # hash of the desired state the cell is acting on
    repairs: tuple[DriftRepair, ...] = ()  # recent repairs, numbered up to repair_seq
    reason: str = ""
    desired: str | None = None  # hash of the desired state the cell holds (tampering shows)
    repair_seq: int = 0
    drifted: tuple[str, ...] = ()  # what differs from the desired state, when `desired` does

    def healthy_at(self, service: str, hash_: str) -> bool:
        seen = self.services.get(service)
        return seen is not None and seen.hash == hash_ and seen.health is Health.HEALTHY


class CellBackend(Protocol):
    # Seconds between looks at a cell that no rollout is watching (drift, dead agents):
    # 0 for cheap looks (local files), more where each look costs API requests.
    resync: float

    def ensure(self, cell: DesiredCell) -> bool:
        """Create the cell's isolation boundary and whatever runs it, if missing or hung.

        True when something had to be (re)started.
        """
        ...

    def apply(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        """Make `services` the whole desired state of the cell; returns its content hash."""
        ...

    def observe(self, cell: str) -> CellObservation:
        """What runs in the cell now, and how healthy it is."""
        ...

    def delete(self, cell: str) -> None:
        """Stop everything in the cell and remove its boundary."""
        ...

    def close(self) -> None:
        """Release what this process holds; cells keep running."""
        ...
