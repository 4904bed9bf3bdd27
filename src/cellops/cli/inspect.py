"""`cellops rollout ...`: watch or steer the current rollout.

`status` and `history` are in status.py, `logs` in logs.py, `rollout status` in
rollout_watch.py."""

from __future__ import annotations

from pathlib import Path

import typer

from cellops.cli import operate, rollout_watch
from cellops.cli.params import FleetArgument, ServerOption, StateOption

rollout_app = typer.Typer(help="Watch or steer the current rollout.", no_args_is_help=True)


# `rollout status` (-o json|yaml, --watch, --rev, exit 1 when halted): rollout_watch.py
rollout_app.command("status")(rollout_watch.rollout_status)


@rollout_app.command("pause")
def rollout_pause(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """Stop advancing; cells keep what they have."""
    operate.steer(repo, state, server, "pause")


@rollout_app.command("resume")
def rollout_resume(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """Go on from where the rollout was paused."""
    operate.steer(repo, state, server, "resume")


@rollout_app.command("abort")
def rollout_abort(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """End the rollout: no further cell gets its revision. Cells that have it keep it
    while healthy; one that fails is still rolled back. `rollout retry` starts it again."""
    operate.steer(repo, state, server, "abort")


@rollout_app.command("retry")
def rollout_retry(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """Roll the latest halted or aborted rollout's revision out again, without a new
    commit: planned afresh against what the cells hold now, canary first. The controller
    starts it on its next pass (or when it starts)."""
    operate.retry(repo, state, server)


rollout_app.command("approve")(operate.approve)
