"""Steering a rollout from the CLI: `rollout pause | resume | abort | retry | approve`,
`promote` and `rollback`. On this host each is the store change the API makes too
(`controller/operator.py`); with `--server` (or a config context) it is the API's."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cellops.cli.common import state_dir
from cellops.cli.output import Exit, console, errors
from cellops.cli.params import FleetArgument, ServerOption, StateOption
from cellops.cli.remote import selected

if TYPE_CHECKING:
    from cellops.store.sqlite import SqliteStore

EXIT = {"none": Exit.USAGE, "conflict": Exit.REJECTED, "unknown": Exit.USAGE}


def open_local(repo: str, state: Path | None) -> SqliteStore:
    """The store of the controller of `repo` on this host; exit 3 when there is none."""
    from cellops.store.sqlite import SqliteStore

    folder = state_dir(repo, state)
    if not (folder / "cellops.db").exists():
        errors.print(f"✗ no controller state in {folder}: run `cellops up` first", markup=False)
        raise typer.Exit(Exit.SOURCE)
    return SqliteStore(folder / "cellops.db")


def request(
    repo: str,
    state: Path | None,
    server: str | None,
    local: Callable[[Any, float], str],
    path: str,
    body: dict[str, Any] | None = None,
) -> None:
    """Carry out one request, here or on the server, and say what was recorded."""
    from cellops.controller.operator import Refused

    remote = selected(server)
    if remote is not None:
        message = str(remote.post(path, body)["message"])
    else:
        store = open_local(repo, state)
        try:
            message = local(store, time.time())
        except Refused as refused:
            errors.print(f"✗ {refused}", markup=False)
            raise typer.Exit(EXIT[refused.kind]) from None
        finally:
            store.close()
    console.print(message, markup=False)


def steer(repo: str, state: Path | None, server: str | None, what: str) -> None:
    """`rollout pause | resume | abort`."""
    from cellops.controller.operator import steer as steer_rollout

    request(
        repo, state, server, lambda s, now: steer_rollout(s, what, now), f"/api/v1/rollout/{what}"
    )


def retry(repo: str, state: Path | None, server: str | None) -> None:
    from cellops.controller.operator import retry as retry_rollout

    request(repo, state, server, retry_rollout, "/api/v1/rollout/retry")


def approve(
    wave: str | None = typer.Argument(
        None, help="The wave (default: the manual wave the rollout waits at)."
    ),
    repo: str = typer.Option(".", "--repo", help="The fleet repo (path or URL)."),
    state: Path | None = StateOption,
    server: str | None = ServerOption,
) -> None:
    """Let the running rollout enter a wave marked `approval: manual`."""
    from cellops.controller.operator import approve as approve_wave

    request(
        repo,
        state,
        server,
        lambda s, now: approve_wave(s, now, wave),
        "/api/v1/rollout/approve",
        {"wave": wave},
    )


def promote(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """End the current wave's bake early: the rollout goes on at the controller's next
    look that finds every cell of the wave healthy."""
    from cellops.controller.operator import promote as promote_wave

    request(repo, state, server, promote_wave, "/api/v1/rollout/promote")


def rollback(
    cell: str | None = typer.Argument(None, help="The cell to return to its last good state."),
    service: str | None = typer.Option(
        None,
        "--service",
        help="Or a service: each cell where it runs a revision not proven good returns to"
        " that cell's last good state.",
    ),
    repo: str = typer.Option(".", "--repo", help="The fleet repo (path or URL)."),
    state: Path | None = StateOption,
    server: str | None = ServerOption,
) -> None:
    """Return a cell, or every cell of a service, to its last good revision (the
    controller does it on its next pass). Pause the rollout first if it should not go on."""
    from cellops.controller.operator import rollback as request_rollback

    if (cell is None) == (service is None):
        errors.print("✗ name a cell, or a service with --service (not both)", markup=False)
        raise typer.Exit(Exit.USAGE)
    request(
        repo,
        state,
        server,
        lambda s, now: request_rollback(s, now, cell=cell, service=service),
        "/api/v1/rollback",
        {"cell": cell, "service": service},
    )
