"""Where a read command gets its documents: the state folder on this host (`Records`),
or a controller's API (`--server`, CELLOPS_SERVER or the config's context). Both give the
same read models (`cellops.query`), so every read command prints them one way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cellops.cli.records import Records
from cellops.cli.remote import Remote, selected

if TYPE_CHECKING:
    from cellops.store.eventquery import EventFilter


class Reader(Protocol):
    def cells(self) -> list[dict[str, Any]]: ...
    def cell(self, name: str) -> dict[str, Any] | None: ...
    def services(self) -> list[dict[str, Any]]: ...
    def fleet(self, cells: list[dict[str, Any]]) -> dict[str, Any]: ...
    def revisions(self, limit: int) -> list[dict[str, Any]]: ...
    def rollouts(self, limit: int) -> list[dict[str, Any]]: ...
    def rollout(self, number: int | None = None) -> dict[str, Any] | None: ...
    def events(self, where: EventFilter, limit: int) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


@dataclass
class RemoteReader:
    """The read models from a controller's API, /api/v1."""

    remote: Remote

    def cells(self) -> list[dict[str, Any]]:
        return list(self.remote.get("/api/v1/cells")["cells"])

    def cell(self, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] = self.remote.get(f"/api/v1/cells/{name}")
        return found

    def services(self) -> list[dict[str, Any]]:
        return list(self.remote.get("/api/v1/services"))

    def fleet(self, cells: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = self.remote.get("/api/v1/fleet")
        return found

    def revisions(self, limit: int) -> list[dict[str, Any]]:
        return list(self.remote.get("/api/v1/revisions", limit=limit))

    def rollouts(self, limit: int) -> list[dict[str, Any]]:
        return list(self.remote.get("/api/v1/rollouts", limit=limit))

    def rollout(self, number: int | None = None) -> dict[str, Any] | None:
        found: dict[str, Any] = self.remote.get(
            f"/api/v1/rollouts/{'latest' if number is None else number}"
        )
        return found

    def events(self, where: EventFilter, limit: int) -> list[dict[str, Any]]:
        from cellops.query.base import iso

        params = {
            "kind": list(where.kind),
            "cell": where.cell,
            "service": where.service,
            "rollout": where.rollout,
            "since": iso(where.since),
            "limit": max(1, limit),
        }
        return list(self.remote.get("/api/v1/events", **params)["events"])

    def close(self) -> None:
        pass


def open_reader(repo: str, state: Path | None, server: str | None) -> Reader:
    """The API named by --server (or CELLOPS_SERVER, or the config's current context),
    else the state folder of the fleet repo `repo` on this host."""
    remote = selected(server)
    return RemoteReader(remote) if remote is not None else Records(repo, state)
