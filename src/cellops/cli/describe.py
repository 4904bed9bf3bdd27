"""`cellops describe cell|service|rollout NAME`: one object whole, as `kubectl describe`
prints it, with its recent events; `-o json|yaml` for scripts."""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import typer

from cellops.cli.events import event_table
from cellops.cli.get import RepoOption
from cellops.cli.output import Exit, Format, emit, say
from cellops.cli.params import OutputOption, ServerOption, StateOption
from cellops.cli.reader import Reader, open_reader
from cellops.cli.table import fields, render

describe_app = typer.Typer(
    help="One cell, service or rollout whole, with its recent events.", no_args_is_help=True
)
EventsOption = typer.Option(10, "--events", help="How many recent events to show.")


def _events(reader: Reader, limit: int, **where: Any) -> list[dict[str, Any]]:
    from cellops.store.eventquery import EventFilter

    return list(reversed(reader.events(EventFilter(**where), limit))) if limit > 0 else []


def _missing(what: str, name: object) -> typer.Exit:
    say(f"✗ no {what} {name!r} in the controller's records", "red", err=True)
    return typer.Exit(Exit.USAGE)


def _write(document: dict[str, Any], output: Format, text: str) -> None:
    if output is not Format.TEXT:
        emit(document, output)
        return
    events = document.get("events") or []
    text += "Events:\n" + (_indent(render(*event_table(events))) if events else "  <none>\n")
    sys.stdout.write(text)


@describe_app.command("cell")
def describe_cell(
    name: str = typer.Argument(..., help="The cell."),
    repo: str = RepoOption,
    state: Path | None = StateOption,
    recent: int = EventsOption,
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """A cell: where it lives, each service's revision, health and replicas, its step in
    the current rollout, and its recent events."""
    with closing(open_reader(repo, state, server)) as reader:
        found = reader.cell(name)
        if found is None:
            raise _missing("cell", name)
        found["events"] = _events(reader, recent, cell=name)
    step = found["rollout"]
    head = [
        ("Name", found["name"]),
        ("Backend", found["backend"]),
        ("Address", found["address"]) if found["address"] else ("Namespace", found["namespace"]),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(found["labels"].items()))),
        ("Health", found["health"]),
        ("Reachable", found["reachable"]),
        ("Reason", found["reason"]),
        ("Rollout", f"#{step['id']} {step['step']} {step['reason']}".strip() if step else None),
    ]
    rows = [
        [s["service"], _short(s["revision"]), s["health"], f"{s['ready']}/{s['desired']}", *rest]
        for s in found["services"]
        for rest in [(s["restarts"], s["since"], s["reason"])]
    ]
    headers = ["service", "revision", "health", "ready", "restarts", "since", "reason"]
    text = fields(head) + "Services:\n" + _indent(render(headers, rows))
    _write(found, output, text)


@describe_app.command("service")
def describe_service(
    name: str = typer.Argument(..., help="The service."),
    repo: str = RepoOption,
    state: Path | None = StateOption,
    recent: int = EventsOption,
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """A service in every cell that runs it (or should): revision, health, replicas."""
    with closing(open_reader(repo, state, server)) as reader:
        placed = [
            {"cell": c["name"], **s}
            for c in reader.cells()
            for s in c["services"]
            if s["service"] == name
        ]
        if not placed:
            raise _missing("service", name)
        found = {"service": name, "cells": placed, "events": _events(reader, recent, service=name)}
    healthy = sum(1 for p in placed if p["health"] == "healthy")
    head = [("Name", name), ("Healthy", f"{healthy} of {len(placed)} cell(s)")]
    rows = [
        [p["cell"], _short(p["revision"]), _short(p["good"]), p["health"], ready, p["since"], why]
        for p in placed
        for ready, why in [(f"{p['ready']}/{p['desired']}", p["reason"])]
    ]
    headers = ["cell", "revision", "last good", "health", "ready", "since", "reason"]
    _write(found, output, fields(head) + "Cells:\n" + _indent(render(headers, rows)))


@describe_app.command("rollout")
def describe_rollout(
    number: int | None = typer.Argument(None, help="The rollout (default: the latest)."),
    repo: str = RepoOption,
    state: Path | None = StateOption,
    recent: int = EventsOption,
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """A rollout: its state, why it waits, its policy, and each wave's cells and steps."""
    from cellops.cli.rollout_view import rollout_text

    with closing(open_reader(repo, state, server)) as reader:
        found = reader.rollout(number)
        if found is None:
            raise _missing("rollout", number if number is not None else "(none yet)")
        found["events"] = _events(reader, recent, rollout=found["id"])
    _write(found, output, rollout_text(found))


def _short(revision: str | None) -> str | None:
    return revision[:12] if revision else None


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())
