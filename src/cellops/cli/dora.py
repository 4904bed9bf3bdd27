"""`cellops dora` and `cellops scorecard`: what the store's records say about the fleet's
delivery, alone or beside the pipeline it replaces."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cellops.cli.common import state_dir
from cellops.cli.output import Exit, Format, console, emit, errors
from cellops.cli.params import FleetArgument, OutputOption, StateOption
from cellops.store.sqlite import SqliteStore

SinceOption = typer.Option(
    "30d", "--since", help="The window: a duration back from now (30d, 2w, 12h) or a date."
)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhm])\s*$")
_UNIT = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0}


def dora(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    since: str = SinceOption,
    by: str = typer.Option("service", "--by", help="Break the figures down by service or cell."),
    output: Format = OutputOption,
) -> None:
    """DORA figures from the controller's records: deployment frequency, lead time for
    changes (commit -> every planned cell healthy), change failure rate and time to
    restore, for the fleet and per service or cell."""
    from cellops.observe.dora import dora_report

    if by not in ("service", "cell"):
        raise typer.BadParameter("expected service or cell", param_hint="--by")
    now = time.time()
    store = open_store(repo, state)
    try:
        report = dora_report(store, parse_since(since, now), now)
    finally:
        store.close()
    if output is not Format.TEXT:
        emit(report, output)
        return
    window = report["window"]
    assert isinstance(window, dict)
    console.print(f"DORA figures from {window['from']} to {window['to']}")
    table = Table(by, "deploys", "per day", "lead p50", "lead p90", "CFR", "failures", "MTTR p50")
    table.add_row("fleet", *_cells(report["fleet"]), style="bold")
    scopes = report["services" if by == "service" else "cells"]
    assert isinstance(scopes, dict)
    for name, figures in scopes.items():
        table.add_row(name, *_cells(figures))
    console.print(table)


def _cells(figures: object) -> list[str]:
    assert isinstance(figures, dict)
    lead, restore = figures["lead_time_seconds"], figures["time_to_restore_seconds"]
    rate = figures["change_failure_rate"]
    return [
        str(figures["deployments"]),
        f"{figures['deployment_frequency_per_day']:.2f}",
        span(lead["p50"]),
        span(lead["p90"]),
        "-" if rate is None else f"{rate:.0%}",
        f"{figures['failures']}"
        + (f" ({figures['unrestored']} open)" if figures["unrestored"] else ""),
        span(restore["p50"]),
    ]


def span(seconds: float | None) -> str:
    """A duration for people: 42s, 3m05s, 2h10m, 3d04h; '-' for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 24 else f"{hours // 24}d{hours % 24:02d}h"


def parse_since(text: str, now: float) -> float:
    """`--since`: 30d, 2w, 12h, 90m back from `now`, or an ISO-8601 date or time (UTC
    unless it says otherwise)."""
    match = _SPAN.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30d, 2w, 12h, 90m) nor a date (2026-11-01)",
            param_hint="--since",
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def open_store(repo: str, state: Path | None) -> SqliteStore:
    folder = state_dir(repo, state)
    if not (folder / "cellops.db").exists():
        errors.print(f"✗ no controller state in {folder}: run `cellops up` first", markup=False)
        raise typer.Exit(Exit.SOURCE)
    return SqliteStore(folder / "cellops.db")


def scorecard(
    baseline: Path = typer.Option(
        ..., "--baseline", help="The old pipeline's record (CSV: docs/operations.md)."
    ),
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    since: str = SinceOption,
    output: Format = OutputOption,
) -> None:
    """The parallel run: the old pipeline's deploys, incidents and pages beside cellops'
    own record: deploy time p50/p90 per service and for the fleet, change failure rate,
    incidents and escalations (halted rollouts, failed rollbacks, manual aborts)."""
    from cellops.dora.scorecard import side_by_side
    from cellops.observe.dora import cellops_record
    from cellops.observe.legacy import BaselineError, read_baseline

    try:
        old = read_baseline(baseline)
    except BaselineError as exc:
        for problem in exc.problems:
            errors.print(f"✗ {problem}", markup=False)
        raise typer.Exit(Exit.USAGE) from None
    now = time.time()
    store = open_store(repo, state)
    try:
        card = side_by_side(old, cellops_record(store, parse_since(since, now), now))
    finally:
        store.close()
    if output is not Format.TEXT:
        emit(card, output)
        return
    console.print(_card_table(card))
    escalations: Any = card["escalations"]
    said = ", ".join(f"{n} {k}" for k, n in escalations["cellops"].items())
    console.print(f"cellops escalations: {said}", soft_wrap=True)


def _card_table(card: dict[str, Any]) -> Table:
    table = Table("scope", "side", "deploys", "p50", "p90", "CFR", "incidents/wk", "escalations/wk")
    scopes = {"fleet": card["fleet"], **card["services"]}
    for scope, sides in scopes.items():
        for side in ("baseline", "cellops"):
            row = sides[side]
            rate = row["change_failure_rate"]
            table.add_row(
                scope,
                side,
                str(row["deploys"]),
                span(row["deploy_time_p50_seconds"]),
                span(row["deploy_time_p90_seconds"]),
                "-" if rate is None else f"{rate:.0%}",
                f"{row['incidents_per_week']:.2f}",
                f"{row['escalations_per_week']:.2f}" if "escalations" in row else "",
            )
    return table
