"""A rollout as text (`rollout status`, `describe rollout`): its state and why it waits,
then each wave by the name the fleet gave it, its cells, their steps and reasons."""

from __future__ import annotations

import json
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import typer

from cellops.cli.common import FleetArgument, StateOption, seconds
from cellops.cli.output import Format, OutputOption, emit
from cellops.cli.reader import open_reader
from cellops.cli.remote import ServerOption
from cellops.cli.table import age, fields, render

# How `rollout status` exits once a rollout has ended: 0 it reached every planned cell
# (or a newer revision took over), 1 it halted or was aborted.
FAILED = frozenset({"halted", "aborted"})


def rollout_text(found: dict[str, Any]) -> str:
    paused = " (paused)" if found["paused"] else ""
    head = [
        ("Rollout", f"#{found['id']}"),
        ("Revision", found["revision"]),
        ("From", found["base"] or "(nothing)"),
        ("State", f"{found['state']}{paused}"),
        ("Waiting", found["waiting"] if found["state"] == "running" else None),
        ("Reason", found["reason"] if found["state"] != "running" and found["reason"] else None),
        ("Started", f"{found['created_at']} ({age(found['created_at'])} ago)"),
        ("Updated", f"{found['updated_at']} ({age(found['updated_at'])} ago)"),
    ]
    policy = found.get("policy")
    if policy:
        head.append(("Policy", _policy(policy)))
    rows: list[list[object]] = []
    for wave in found["plan"]:
        for i, cell in enumerate(wave["cells"]):
            rows.append(
                [
                    _wave_label(wave) if i == 0 else "",
                    wave["status"] if i == 0 else "",
                    cell["cell"],
                    cell["step"],
                    ", ".join(f"{c['service']} {c['action']}" for c in cell["changes"]),
                    cell["reason"],
                ]
            )
    table = render(["wave", "status", "cell", "step", "changes", "reason"], rows)
    return fields([(k, v) for k, v in head if v is not None]) + "Waves:\n" + _indent(table)


def _wave_label(wave: dict[str, Any]) -> str:
    label = str(wave["name"])
    if wave["batches"] > 1:
        label += f" {wave['batch']}/{wave['batches']}"
    if wave["canary"] and wave["name"] != "canary":
        label += " (canary)"
    if wave.get("approval") == "manual":
        label += " (approved)" if wave.get("approved") else " (needs approval)"
    return label


def _policy(policy: dict[str, Any]) -> str:
    parts = [
        f"progress deadline {policy['progress_deadline']:.0f}s"
        if policy.get("progress_deadline") is not None
        else None,
        f"failure budget {policy['failure_budget']}"
        if policy.get("failure_budget") is not None
        else None,
        f"on failure {policy['on_failure']}" if policy.get("on_failure") else None,
    ]
    return ", ".join(p for p in parts if p)


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def exit_code(found: dict[str, Any] | None) -> int:
    return 1 if found is not None and found["state"] in FAILED else 0


def rollout_status(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    output: Format = OutputOption,
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Refresh until the rollout ends, then exit with its result."
    ),
    interval: str = typer.Option("2s", "--interval", help="With --watch: how often to look."),
    server: str | None = ServerOption,
) -> None:
    """The latest rollout: why it waits, each wave by name, each cell's step and reason.

    Exit status: 0 running, completed or superseded; 1 halted or aborted (with --watch,
    once it has ended); 3 no controller state.
    """
    every = max(0.2, seconds(interval, "--interval"))
    with closing(open_reader(repo, state, server)) as reader:
        found = reader.rollout()
        shown = _show(found, output, None)
        while watch and found is not None and found["state"] == "running":
            time.sleep(every)
            found = reader.rollout(found["id"])
            shown = _show(found, output, shown)
    raise typer.Exit(exit_code(found))


def _show(found: dict[str, Any] | None, output: Format, before: str | None) -> str:
    """Print the rollout if it changed since `before` (its previous text); the text."""
    if found is None:
        text = "no rollout yet\n"
    elif output is Format.TEXT:
        text = rollout_text(found)
    else:
        text = json.dumps(found, sort_keys=True)
    if text != before:
        if output is Format.TEXT or found is None:
            if before is not None and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # a terminal shows the latest only
            sys.stdout.write(text)
        else:
            emit(found, output)
        sys.stdout.flush()
    return text
