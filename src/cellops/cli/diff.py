"""`cellops diff`: what each cell runs against what the fleet says at a revision.

A local cell is read from its agent's status (the version each service's replicas run)
and the ledger (each service as it was applied); a service whose running version is not
the revision's is shown field by field. A Kubernetes cell is asked by its API server: a
server-side apply dry run of each object, against the object as it lives
(diff_kubernetes.py). Exit status, as `kubectl diff`: 0 in sync, 1 differences (or the
revision is rejected), 3 the repo, the state or a cluster cannot be read.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from cellops.cli.common import open_repo, state_dir
from cellops.cli.output import Exit, Format, emit, errors, short
from cellops.cli.params import OutputOption, RepoArgument, RevOption, StateOption

if TYPE_CHECKING:
    from cellops.backends.base import CellObservation
    from cellops.render import DesiredCell, DesiredFleet
    from cellops.store.records import LedgerRow

NOISE = ("revision", "hash")  # in the header, not in the field diff: they always differ


def diff(
    repo: Path = RepoArgument,
    cell: str | None = typer.Option(None, "--cell", "-c", help="Only this cell."),
    rev: str = RevOption,
    state: Path | None = StateOption,
    output: Format = OutputOption,
) -> None:
    """What each cell runs against what the fleet says at --rev (default HEAD): local
    cells by their agent's status, Kubernetes cells by a server-side apply dry run.

    Exit status: 0 every cell runs what the fleet says, 1 some differ, 3 unreadable.
    """
    desired = _desired(repo, rev)
    cells = [c for name, c in sorted(desired.cells.items()) if cell in (None, name)]
    if not cells:
        errors.print(f"✗ no cell {cell!r} at {short(desired.revision)}", markup=False)
        raise typer.Exit(Exit.USAGE)
    reports = [_report(c, repo, state, desired.revision) for c in cells]
    if output is not Format.TEXT:
        emit({"revision": desired.revision, "cells": reports}, output)
    else:
        for report in reports:
            sys.stdout.write(report_text(report))
    raise typer.Exit(0 if all(r["in_sync"] for r in reports) else 1)


def _desired(repo: Path, rev: str) -> DesiredFleet:
    from cellops.model.errors import RevisionRejected
    from cellops.pipeline import Compiler

    try:
        return Compiler(open_repo(repo)).desired(rev)
    except RevisionRejected as rejected:
        errors.print(
            f"✗ revision {short(rejected.revision)} is rejected ({len(rejected.problems)}"
            f" problem(s); `cellops validate --rev {rev}` lists them): nothing to compare",
            markup=False,
        )
        raise typer.Exit(Exit.REJECTED) from None


def _report(cell: DesiredCell, repo: Path, state: Path | None, revision: str) -> dict[str, Any]:
    from cellops.spec.cell import KubernetesBackend

    if isinstance(cell.spec.backend, KubernetesBackend):
        from cellops.cli.diff_kubernetes import kubernetes_report

        return kubernetes_report(cell, repo, revision)
    return local_report(cell, state_dir(str(repo), state))


def local_report(cell: DesiredCell, folder: Path) -> dict[str, Any]:
    """Each service: the version its replicas run (agent), and what the fleet says."""
    from cellops.backends.local.backend import LocalCells
    from cellops.store.sqlite import SqliteStore

    seen = LocalCells(folder, lambda tree, target: None).observe(cell.name)
    rows: dict[str, LedgerRow] = {}
    if (folder / "cellops.db").exists():
        store = SqliteStore(folder / "cellops.db")
        rows = {r.service: r for r in store.ledger_rows(cell.name)}
        store.close()
    names = sorted(set(cell.services) | {n for n, r in rows.items() if r.applied_hash})
    services = [_service(cell, name, seen, rows.get(name)) for name in names]
    return {
        "cell": cell.name,
        "backend": "local",
        "where": cell.spec.backend.address if hasattr(cell.spec.backend, "address") else None,
        "reachable": seen.reachable,
        "reason": "" if seen.reachable else seen.reason or "its agent does not answer",
        "in_sync": seen.reachable and all(s["state"] == "in-sync" for s in services),
        "services": services,
    }


def _service(
    cell: DesiredCell, name: str, seen: CellObservation, row: LedgerRow | None
) -> dict[str, Any]:
    from cellops.render.stored import service_json

    target = cell.services.get(name)
    running = seen.services.get(name)
    runs = running.hash if running is not None else None
    known = row is not None and row.applied_hash is not None and row.applied_hash == runs
    entry: dict[str, Any] = {
        "service": name,
        "runs": row.applied_rev if known and row is not None else None,
        "runs_hash": runs,
        "fleet": target.revision if target is not None else None,
        "fleet_hash": target.hash if target is not None else None,
        "diff": "",
    }
    if target is None:
        entry["state"] = "extra"  # the fleet no longer has it here: the next rollout removes it
    elif runs is None:
        entry["state"] = "missing"
    elif runs == target.hash:
        entry["state"] = "in-sync"
    else:
        entry["state"] = "differs"
    if entry["state"] != "in-sync" and target is not None:
        applied = json.loads(row.applied_spec) if known and row and row.applied_spec else {}
        wanted = json.loads(service_json(target))
        runs = f"runs {short(entry['runs'])}" if entry["runs"] else "runs an unknown version"
        entry["diff"] = unified(
            {k: v for k, v in applied.items() if k not in NOISE},
            {k: v for k, v in wanted.items() if k not in NOISE},
            f"{cell.name}/{name} ({runs})",
            f"{cell.name}/{name} (fleet {short(target.revision)})",
        )
    return entry


def unified(before: dict[str, Any], after: dict[str, Any], old: str, new: str) -> str:
    """The two as YAML, unified-diffed, headed `old` and `new`; `before` {} when there is
    nothing (or nothing known) before."""
    lines = difflib.unified_diff(
        yaml.safe_dump(before, sort_keys=True).splitlines() if before else [],
        yaml.safe_dump(after, sort_keys=True).splitlines(),
        old,
        new,
        lineterm="",
    )
    return "\n".join(lines)


def report_text(report: dict[str, Any]) -> str:
    where = f" {report['where']}" if report.get("where") else ""
    head = f"cell {report['cell']} ({report['backend']}{where}): "
    if not report["reachable"]:
        return head + f"cannot be read: {report['reason']}\n"
    items = report.get("services", report.get("objects", []))
    changed = [i for i in items if i["state"] != "in-sync"]
    text = head + (f"{len(changed)} of {len(items)} differ\n" if changed else "in sync\n")
    for item in changed:
        label = item.get("service") or item.get("object")
        text += f"  {label}: {item['state']}\n"
        text += "".join(f"    {line}\n" for line in item["diff"].splitlines())
    return text
