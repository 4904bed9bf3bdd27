"""`cellops validate`: is this revision acceptable? Every error, with file and line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from cellops.cli.common import RepoArgument, RevOption, edge_checks, open_repo
from cellops.cli.output import Exit, Format, OutputOption, console, emit, print_problems, short
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.render import render
from cellops.source.worktree import read_worktree
from cellops.spec.loader import load_revision


def validate(
    repo: Path = RepoArgument,
    rev: str = RevOption,
    path: Path | None = typer.Option(
        None, "--path", "-p", help="Validate the files in this folder as they are (no commit)."
    ),
    output: Format = OutputOption,
) -> None:
    """Validate a revision of the fleet repo.

    Prints each problem as FILE:LINE: FIELD: MESSAGE. Exit status: 0 valid (warnings
    allowed), 1 invalid, 3 the repo or revision cannot be read.
    """
    snapshot = read_worktree(path) if path is not None else open_repo(repo).snapshot(rev)
    try:
        revision = load_revision(snapshot)
        with tempfile.TemporaryDirectory(prefix="cellops-") as scratch:
            desired = render(revision)
            found = [
                p for c in edge_checks(repo, path, Path(scratch)) for p in c(revision, desired)
            ]
        if any(p.severity is Severity.ERROR for p in found):
            raise RevisionRejected(revision.id, (*found, *revision.warnings))
    except RevisionRejected as rejected:
        _report(snapshot.revision, False, rejected.problems, fmt=output)
        raise typer.Exit(Exit.REJECTED) from None
    _report(
        revision.id,
        True,
        (*revision.warnings, *found),
        cells=len(revision.cells),
        services=len(revision.services),
        fmt=output,
    )


def _report(
    rev: str,
    valid: bool,
    found: tuple[Problem, ...],
    *,
    cells: int = 0,
    services: int = 0,
    fmt: Format,
) -> None:
    if fmt is not Format.TEXT:
        emit(
            {
                "revision": rev,
                "valid": valid,
                "cells": cells,
                "services": services,
                "problems": [p.as_dict() for p in found],
            },
            fmt,
        )
        return
    print_problems(found)
    errors = sum(1 for p in found if p.severity is Severity.ERROR)
    warnings = len(found) - errors
    if valid:
        extra = f", {warnings} warning(s)" if warnings else ""
        console.print(
            f"[green]✓[/] revision {short(rev)} is valid: {cells} cells, {services} services{extra}"
        )
    else:
        console.print(
            f"[red]✗[/] revision {short(rev)} is rejected: {errors} error(s), {warnings} warning(s)"
        )
