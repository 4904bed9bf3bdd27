"""`cellops rollout status [--watch] [--rev COMMIT]`: the rollout as rollout_view.py
prints it, refreshed until it ends; with --rev, the rollout of that commit, waited for
until the controller has taken it (a CI job's "is my commit live?")."""

from __future__ import annotations

import json
import re
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import typer

from cellops.cli.common import seconds
from cellops.cli.output import Exit, Format, emit, say
from cellops.cli.params import FleetArgument, OutputOption, ServerOption, StateOption
from cellops.cli.reader import Reader, open_reader
from cellops.cli.rollout_view import exit_code, rollout_text


def rollout_status(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    output: Format = OutputOption,
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Refresh until the rollout ends, then exit with its result."
    ),
    rev: str | None = typer.Option(
        None,
        "--rev",
        help="The rollout of this commit (an id or its start); with --watch, wait for the"
        " controller to take it.",
    ),
    interval: str = typer.Option("2s", "--interval", help="With --watch: how often to look."),
    server: str | None = ServerOption,
) -> None:
    """The latest rollout (or --rev's): why it waits, each wave by name, each cell's step.

    Exit status: 0 running, completed or superseded; 1 halted or aborted (with --watch,
    once it has ended), or --rev was rejected; 2 no such rollout; 3 no controller state.
    """
    every = max(0.2, seconds(interval, "--interval"))
    with closing(open_reader(repo, state, server)) as reader:
        found = reader.rollout() if rev is None else _of_revision(reader, rev, watch, every)
        shown = _show(found, output, None)
        while watch and found is not None and found["state"] == "running":
            time.sleep(every)
            found = reader.rollout(found["id"])
            shown = _show(found, output, shown)
    raise typer.Exit(exit_code(found))


def _of_revision(reader: Reader, rev: str, watch: bool, every: float) -> dict[str, Any]:
    """The rollout of commit `rev`; with `watch`, once the controller has taken it."""
    said = False
    while True:
        seen = next((r for r in reader.revisions(50) if r["revision"].startswith(rev)), None)
        if seen is not None and not seen["accepted"]:
            say(f"✗ revision {seen['revision'][:12]} was rejected:", "red", err=True)
            for problem in seen["problems"]:
                say(f"  {problem['text']}", "red", err=True)
            raise typer.Exit(Exit.REJECTED)
        if seen is not None and seen["rollout"] is not None:
            found = reader.rollout(seen["rollout"]["id"])
            assert found is not None
            return found
        if seen is not None and not watch:  # accepted, and nothing to roll out
            say(f"revision {seen['revision'][:12]} is accepted; it changes no cell", err=True)
            raise typer.Exit(Exit.OK)
        if not watch:
            say(f"✗ the controller has not seen {rev} (yet): --watch waits for it", err=True)
            raise typer.Exit(Exit.USAGE)
        if not said:
            say(f"waiting for the controller to take {rev} ...", err=True)
            said = True
        time.sleep(every)


def _show(found: dict[str, Any] | None, output: Format, before: str | None) -> str:
    """Print the rollout if it changed since `before` (the key of what was printed last);
    the key. A terminal is redrawn as the clocks move; a pipe gets a new print only when
    a step, a wave or the state changed, not every second of a wait."""
    tty = sys.stdout.isatty() and output is Format.TEXT
    key = _key(found, tty)
    if key != before:
        if output is Format.TEXT or found is None:
            if before is not None and tty:
                sys.stdout.write("\x1b[H\x1b[2J")  # a terminal shows the latest only
            sys.stdout.write(rollout_text(found) if found is not None else "no rollout yet\n")
        else:
            emit(found, output)
        sys.stdout.flush()
    return key


def _key(found: dict[str, Any] | None, clocks: bool) -> str:
    if found is None or clocks:
        return rollout_text(found) if found is not None else ""
    steady = {k: v for k, v in found.items() if k not in ("updated_at", "waiting")}
    return json.dumps(steady, sort_keys=True) + re.sub(r"\d+s", "", found["waiting"] or "")
