"""`status`, `history` and `rollout status` from a controller's API (`--server`): the
same read models the API serves (`cellops.query`), printed for people or passed on as
JSON/YAML."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cellops.cli.output import Format, console, emit
from cellops.cli.remote import Remote


def status(remote: Remote, output: Format) -> None:
    cells = remote.get("/api/v1/cells")["cells"]
    if output is not Format.TEXT:
        emit({"server": remote.server, "cells": cells}, output)
        return
    fleet = remote.get("/api/v1/fleet")
    current = fleet.get("revision")
    console.print(f"fleet at {current[:12] if current else '(nothing accepted yet)'}", markup=False)
    table = Table("cell", "where", "service", "revision", "health", "ready", "since", "reason")
    for cell in cells:
        where = cell.get("address") or cell.get("namespace") or "-"
        for row in cell["services"] or [{"service": "-", "health": cell["health"]}]:
            table.add_row(
                cell["name"],
                where,
                row["service"],
                str(row.get("revision") or "-")[:12],
                row["health"],
                f"{row.get('ready', 0)}/{row.get('desired', 0)}",
                str(row.get("since") or "-"),
                str(row.get("reason") or ""),
            )
    console.print(table)


def history(remote: Remote, limit: int, output: Format) -> None:
    revisions = remote.get("/api/v1/revisions", limit=limit)
    if output is not Format.TEXT:
        emit(revisions, output)
        return
    table = Table("seen", "revision", "verdict", "rollout", "message")
    for record in revisions:
        rollout = record.get("rollout")
        verdict = "accepted" if record["accepted"] else f"rejected ({len(record['problems'])})"
        table.add_row(
            record["seen_at"],
            record["revision"][:12],
            verdict,
            f"#{rollout['id']} {rollout['state']}" if rollout else "-",
            (record["message"] or "").split("\n")[0],
        )
    console.print(table)
    for record in revisions:
        for problem in record["problems"]:
            console.print(f"{record['revision'][:12]}: {problem['text']}", markup=False)


def rollout_status(remote: Remote, output: Format) -> None:
    rollout: dict[str, Any] | None = remote.call("GET", "/api/v1/rollouts/latest")
    if output is not Format.TEXT:
        emit(rollout, output)
        return
    assert rollout is not None
    paused = ", paused" if rollout["paused"] else ""
    console.print(
        f"rollout #{rollout['id']} of {rollout['revision'][:12]}: {rollout['state']}{paused}",
        markup=False,
    )
    if rollout["waiting"]:
        console.print(rollout["waiting"], markup=False)
    table = Table("wave", "cell", "step", "reason")
    for wave in rollout["plan"]:
        for index, cell in enumerate(wave["cells"]):
            label = f"{wave['name']} ({wave['status']})" if index == 0 else ""
            table.add_row(label, cell["cell"], cell["step"], cell["reason"])
    console.print(table)
