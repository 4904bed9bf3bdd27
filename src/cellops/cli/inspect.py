"""`cellops status`, `history`, `logs` and `rollout ...`: read what the controller keeps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cellops.cli import operate, remote_views
from cellops.cli.common import FleetArgument, StateOption, state_dir
from cellops.cli.output import Exit, Format, OutputOption, console, emit, errors
from cellops.cli.remote import ServerOption, selected
from cellops.store.records import Rollout

if TYPE_CHECKING:
    from cellops.store.sqlite import SqliteStore


def _open(repo: str, state: Path | None) -> tuple[Path, SqliteStore]:
    from cellops.store.sqlite import SqliteStore

    folder = state_dir(repo, state)
    if not (folder / "cellops.db").exists():
        errors.print(f"✗ no controller state in {folder}: run `cellops up` first", markup=False)
        raise typer.Exit(Exit.SOURCE)
    return folder, SqliteStore(folder / "cellops.db")


def status(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """Cells x services: the revision each runs, its health and since when."""
    if (remote := selected(server)) is not None:
        remote_views.status(remote, output)
        return
    from cellops.backends.local.isolation import describe as describe_isolation
    from cellops.cli.views import status_rows, status_table
    from cellops.images.ledger import read_verdicts, verdict_dict, verdict_lines
    from cellops.wiring import Observer

    folder, store = _open(repo, state)
    observer = Observer(store, folder)
    try:
        rows = status_rows(store, observer.observe)
    finally:
        observer.close()
    verdicts = read_verdicts(folder / "cellops.db")
    isolated = describe_isolation(folder)
    if output is not Format.TEXT:
        document = {"current": store.setting("fleet.current"), "services": rows}
        document["images"] = [verdict_dict(v) for v in verdicts]
        emit({**document, "isolation": isolated}, output)
        return
    current = store.setting("fleet.current")
    console.print(f"fleet at {current[:12] if current else '(nothing accepted yet)'}")
    console.print(status_table(rows))
    for line in verdict_lines(verdicts):  # images: verified, or why one may not run
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if isolated.get("note"):  # cells share a uid, or their network is open
        console.print(f"[yellow]![/] {isolated['note']}", soft_wrap=True)


def history(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    limit: int = typer.Option(20, "--limit", "-n", help="How many entries."),
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """Revisions seen (accepted or rejected) and the rollouts they started."""
    if (remote := selected(server)) is not None:
        remote_views.history(remote, limit, output)
        return
    _, store = _open(repo, state)
    revisions = store.revisions(limit)
    rollouts = {r.revision: r for r in reversed(store.rollouts(limit * 2))}
    if output is not Format.TEXT:
        emit(
            [
                {
                    "revision": r.id,
                    "accepted": r.accepted,
                    "seen_at": r.seen_at,
                    "message": r.message,
                    "problems": r.problems,
                    "rollout": _rollout_summary(rollouts.get(r.id)),
                }
                for r in revisions
            ],
            output,
        )
        return
    table = Table("seen", "revision", "verdict", "rollout", "message")
    for record in revisions:
        rollout = rollouts.get(record.id)
        verdict = (
            "[green]accepted[/]"
            if record.accepted
            else (f"[red]rejected[/] ({len(record.problems)} problem(s))")
        )
        table.add_row(
            time.strftime("%H:%M:%S", time.localtime(record.seen_at)),
            record.id[:12],
            verdict,
            _rollout_summary(rollout) or "-",
            record.message.splitlines()[0] if record.message else "",
        )
    console.print(table)


def _rollout_summary(rollout: Rollout | None) -> str:
    if rollout is None:
        return ""
    reason = f": {rollout.reason}" if rollout.reason else ""
    return f"#{rollout.id} {rollout.state}{reason}"


def logs(
    cell: str = typer.Argument(..., help="The cell."),
    service: str = typer.Argument(..., help="The service."),
    repo: str = typer.Option(".", "--repo", help="The fleet repo (path or URL)."),
    state: Path | None = StateOption,
    lines: int = typer.Option(50, "--lines", "-n", help="Lines per replica."),
) -> None:
    """The last lines of each replica's output in a cell."""
    from cellops.backends.local.layout import cell_paths

    folder = state_dir(repo, state)
    files = sorted(cell_paths(folder, cell).logs(service).glob("*.log"))
    if not files:
        errors.print(f"✗ no logs for {service} in cell {cell} (under {folder})", markup=False)
        raise typer.Exit(Exit.USAGE)
    for path in files:
        console.rule(path.stem)
        text = path.read_text(errors="replace").splitlines()[-lines:]
        console.print("\n".join(text), markup=False, highlight=False)


rollout_app = typer.Typer(help="Watch or steer the current rollout.", no_args_is_help=True)


@rollout_app.command("status")
def rollout_status(
    repo: str = FleetArgument, state: Path | None = StateOption, server: str | None = ServerOption
) -> None:
    """The latest rollout: its waves, each cell's step, and why a wave is blocked."""
    if (remote := selected(server)) is not None:
        remote_views.rollout_status(remote, Format.TEXT)
        return
    from cellops.cli.views import rollout_table

    _, store = _open(repo, state)
    latest = store.rollouts(limit=1)
    rollout = latest[0] if latest else None
    console.print(rollout_table(rollout, store.cell_steps(rollout.id) if rollout else {}))


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
