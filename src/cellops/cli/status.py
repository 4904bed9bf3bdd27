"""`cellops status` and `cellops history`: the fleet's cells x services (every cell of
the current revision, applied or not, with its address or namespace), and the revisions
seen (a rejected one with its message and problems). Here or through `--server`."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

from cellops.cli.output import Format, emit, say
from cellops.cli.params import FleetArgument, Option, OutputOption, ServerOption, StateOption
from cellops.cli.reader import open_reader
from cellops.cli.records import Records
from cellops.cli.table import age, echo


def status(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """Every cell x service: where the cell lives, the revision it runs, its health."""
    with closing(open_reader(repo, state, server)) as reader:
        cells = reader.cells()
        fleet = reader.fleet(cells)
        extra = _local_extras(reader) if isinstance(reader, Records) else {}
    rows = [{"cell": c["name"], "where": _where(c), **s} for c in cells for s in c["services"]]
    if output is not Format.TEXT:
        emit(
            {"current": fleet["revision"], "fleet": fleet, "cells": cells, "services": rows}
            | {k: v for k, v in extra.items() if k != "lines"},
            output,
        )
        return
    say(_headline(fleet))
    echo(
        ["cell", "where", "service", "revision", "health", "ready", "since", "reason"],
        [
            *(_row(r) for r in rows),
            *(
                [c["name"], _where(c), None, None, c["health"], None, None, c["reason"]]
                for c in cells
                if not c["services"]
            ),
        ],
    )
    for line, style in extra.get("lines", []):  # images verified or refused; not isolated
        say(line, style)


def _row(r: dict[str, Any]) -> list[object]:
    since = age(r["since"]) if r["since"] else None
    ready = f"{r['ready']}/{r['desired']}"
    return [
        r["cell"],
        r["where"],
        r["service"],
        _short(r["revision"]),
        r["health"],
        ready,
        since,
        r["reason"],
    ]


def _local_extras(records: Records) -> dict[str, Any]:
    """What only this host knows: image verdicts, and how cells are isolated here."""
    from cellops.backends.local.isolation import describe as describe_isolation
    from cellops.images.ledger import read_verdicts, verdict_dict, verdict_lines

    verdicts = read_verdicts(records.folder / "cellops.db")
    isolated = describe_isolation(records.folder)
    lines: list[tuple[str, str | None]] = [(line, None) for line in verdict_lines(verdicts)]
    if isolated.get("note"):
        lines.append((f"! {isolated['note']}", "yellow"))
    return {"images": [verdict_dict(v) for v in verdicts], "isolation": isolated, "lines": lines}


def _headline(fleet: dict[str, Any]) -> str:
    current = fleet["revision"]
    health = ", ".join(f"{n} {h}" for h, n in fleet["health"].items())
    line = f"fleet at {current[:12] if current else '(nothing accepted yet)'}"
    line += f": {fleet['cells']} cell(s)" + (f" ({health})" if health else "")
    rollout = fleet.get("rollout")
    if rollout:
        reason = f": {rollout['reason']}" if rollout["reason"] else ""
        line += f"; rollout #{rollout['id']} {rollout['state']}{reason}"
    exposure = fleet.get("exposure")
    if exposure:  # the weighted share of tenants on cells running something unbaked
        cells = ", ".join(exposure["cells"])
        line += f"; exposure {exposure['ratio']:.1%}" + (f" ({cells})" if cells else "")
    return line


def _where(cell: dict[str, Any]) -> str | None:
    return cell.get("address") or cell.get("namespace")


def _short(revision: str | None) -> str | None:
    return revision[:12] if revision else None


def history(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    limit: int = Option(20, "--limit", "-n", help="How many entries."),
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """Revisions seen, accepted or rejected (with the commit's message and each problem as
    FILE:LINE: FIELD: MESSAGE), and the rollouts they started."""
    with closing(open_reader(repo, state, server)) as reader:
        revisions = reader.revisions(limit)
    if output is not Format.TEXT:
        emit(revisions, output)
        return
    for r in revisions:
        rollout = r["rollout"]
        verdict = "accepted" if r["accepted"] else "REJECTED"
        ran = f"rollout #{rollout['id']} {rollout['state']}" if rollout else "no rollout"
        why = f": {rollout['reason']}" if rollout and rollout["reason"] else ""
        say(
            f"{r['revision'][:12]}  {r['seen_at']} ({age(r['seen_at'])} ago)  {verdict}"
            + (f"  {ran}{why}" if r["accepted"] else ""),
            None if r["accepted"] else "red",
        )
        for line in (r["message"] or "").strip().splitlines():
            say(f"    {line}")
        for problem in r["problems"]:
            say(f"  ✗ {problem['text']}", "red")
