"""`cellops get cells|services|rollouts|revisions [NAME]`: one line per object, as
`kubectl get` prints them; `-o json|yaml` gives the same read models the API serves."""

from __future__ import annotations

from contextlib import closing
from enum import StrEnum
from pathlib import Path
from typing import Any

from cellops.cli.output import Exit, Format, emit, errors
from cellops.cli.params import (
    Argument,
    BadParameter,
    Option,
    OutputOption,
    ServerOption,
    StateOption,
)
from cellops.cli.reader import Reader, open_reader
from cellops.cli.table import age, echo

RepoOption = Option(".", "--repo", help="The fleet repo (path or URL; default: here).")


class Kind(StrEnum):
    CELLS = "cells"
    SERVICES = "services"
    ROLLOUTS = "rollouts"
    REVISIONS = "revisions"


ALIASES = {
    "cell": Kind.CELLS,
    "service": Kind.SERVICES,
    "svc": Kind.SERVICES,
    "rollout": Kind.ROLLOUTS,
    "ro": Kind.ROLLOUTS,
    "revision": Kind.REVISIONS,
    "rev": Kind.REVISIONS,
}


KEYS = {Kind.REVISIONS: "revision", Kind.SERVICES: "service"}  # else "name", or "id"


def kind_of(text: str) -> Kind:
    try:
        return ALIASES.get(text) or Kind(text)
    except ValueError:
        choices = ", ".join(k.value for k in Kind)
        raise BadParameter(f"{text!r} is not one of: {choices}", param_hint="KIND") from None


def get(
    kind: str = Argument(..., metavar="KIND", help="cells, services, rollouts, revisions."),
    name: str | None = Argument(None, help="Only this one (a rollout by number)."),
    repo: str = RepoOption,
    state: Path | None = StateOption,
    limit: int = Option(20, "--limit", "-n", help="Rollouts or revisions: how many."),
    output: Format = OutputOption,
    server: str | None = ServerOption,
) -> None:
    """List cells, services, rollouts or revisions, one line each (as `kubectl get`)."""
    what = kind_of(kind)
    with closing(open_reader(repo, state, server)) as reader:
        items = items_of(reader, what, limit)
    if name is not None:
        key = (
            "revision" if what is Kind.REVISIONS else ("service" if what is Kind.SERVICES else None)
        )
        items = [i for i in items if _matches(i, name, key)]
        if not items:
            errors.print(f"✗ no {what.value.rstrip('s')} {name!r}", markup=False)
            raise SystemExit(Exit.USAGE)
    if output is not Format.TEXT:
        emit(items, output)
        return
    headers, rows = TABLES[what](items)
    echo(headers, rows)


def items_of(reader: Reader, what: Kind, limit: int) -> list[dict[str, Any]]:
    if what is Kind.ROLLOUTS:
        return reader.rollouts(limit)
    if what is Kind.REVISIONS:
        return reader.revisions(limit)
    return reader.cells() if what is Kind.CELLS else reader.services()


def _matches(item: dict[str, Any], name: str, key: str | None) -> bool:
    if key == "revision":
        return str(item["revision"]).startswith(name)
    return str(item[key] if key else item.get("name", item.get("id"))) == name


def _cells(items: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    headers = [
        "name",
        "backend",
        "where",
        "region",
        "ring",
        "health",
        "services",
        "revision",
        "step",
    ]
    rows: list[list[object]] = []
    for cell in items:
        services = cell["services"]
        ready = sum(1 for s in services if s["health"] == "healthy")
        revisions = sorted({str(s["revision"])[:12] for s in services if s["revision"]})
        step = cell["rollout"]
        rows.append(
            [
                cell["name"],
                cell["backend"],
                cell["address"] or cell["namespace"],
                cell["region"],
                cell["ring"],
                cell["health"],
                f"{ready}/{len(services)}",
                ",".join(revisions),
                f"#{step['id']} {step['step']}" if step else None,
            ]
        )
    return headers, rows


def _services(items: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    def counts(found: dict[str, int]) -> str:
        return ",".join(f"{str(k)[:12]}={v}" for k, v in sorted(found.items()))

    rows = [[s["service"], s["cells"], counts(s["health"]), counts(s["revisions"])] for s in items]
    return ["name", "cells", "health", "revisions"], rows


def _rollouts(items: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    rows: list[list[object]] = []
    for r in items:
        paused = " (paused)" if r["paused"] else ""
        rows.append(
            [
                r["id"],
                str(r["revision"])[:12],
                str(r["state"]) + paused,
                r["wave_name"],
                f"{r['wave']}/{r['waves']}",
                r["phase"] if r["state"] == "running" else None,
                age(r["created_at"]),
                r["reason"],
            ]
        )
    return ["id", "revision", "state", "wave", "batches done", "phase", "age", "reason"], rows


def _revisions(items: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    rows: list[list[object]] = []
    for r in items:
        rollout = r["rollout"]
        verdict = "accepted" if r["accepted"] else f"rejected ({len(r['problems'])} problem(s))"
        rows.append(
            [
                str(r["revision"])[:12],
                verdict,
                f"#{rollout['id']} {rollout['state']}" if rollout else None,
                age(r["seen_at"]),
                (r["message"] or "").splitlines()[0] if r["message"] else None,
            ]
        )
    return ["revision", "verdict", "rollout", "age", "message"], rows


TABLES = {
    Kind.CELLS: _cells,
    Kind.SERVICES: _services,
    Kind.ROLLOUTS: _rollouts,
    Kind.REVISIONS: _revisions,
}
