"""`cellops events`: what the controller recorded (applies, health changes, rollbacks,
rejections, drift), newest last as `kubectl get events` lists them, filtered by cell,
service, rollout or kind, since a time."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path
from typing import Any

import typer

from cellops.cli.get import RepoOption
from cellops.cli.output import Format, emit
from cellops.cli.params import OutputOption, ServerOption, StateOption
from cellops.cli.reader import open_reader
from cellops.cli.table import age, echo


def since_option(text: str | None) -> float | None:
    """`--since`: a duration back from now (`90s`, `15m`, `2h`, `7d`) or an ISO-8601 time."""
    if text is None:
        return None
    from cellops.query.base import parse_time
    from cellops.spec.fields import parse_duration

    try:
        return time.time() - float(str(parse_duration(text)))
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (90s, 15m, 2h, 7d) nor an ISO-8601 time"
            " (2026-11-30T10:00:00Z)",
            param_hint="--since",
        ) from None


SinceOption = typer.Option(
    None, "--since", help="Only newer: a duration back from now (15m, 2h, 7d) or an ISO time."
)


def events(
    repo: str = RepoOption,
    state: Path | None = StateOption,
    cell: str | None = typer.Option(None, "--cell", "-c", help="Only about this cell."),
    service: str | None = typer.Option(None, "--service", "-s", help="Only this service."),
    rollout: int | None = typer.Option(None, "--rollout", help="Only this rollout (number)."),
    kind: list[str] = typer.Option(
        [], "--kind", "-k", help="Only these kinds (repeat): applied, rollback, drift, ..."
    ),
    since: str | None = SinceOption,
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many, the newest."),
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """Events the controller recorded, oldest first (the newest --limit of them)."""
    from cellops.store.eventquery import EventFilter

    where = EventFilter(
        kind=tuple(kind), cell=cell, service=service, rollout=rollout, since=since_option(since)
    )
    with closing(open_reader(repo, state, server)) as reader:
        found = list(reversed(reader.events(where, limit)))  # newest first; print as a log
    if output is not Format.TEXT:
        emit(found, output)
        return
    echo(*event_table(found))


def event_table(found: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    rows: list[list[object]] = [
        [
            age(e["at"]),
            e["at"],
            e["kind"],
            e["cell"],
            e["service"],
            f"#{e['rollout']}" if e["rollout"] else None,
            e["message"],
        ]
        for e in found
    ]
    return ["age", "time", "kind", "cell", "service", "rollout", "message"], rows
