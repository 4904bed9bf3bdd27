"""`cellops validate`: is this revision acceptable? Every error, with file and line.

`judge` is how a revision is judged from the command line (`validate`; the corpus of bad
revisions goes through it too); `rejecting_on_failure` makes any unexpected error while a
command judges a revision one clear line and a rejection, never a traceback.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from cellops.cli.common import edge_checks, read_snapshot
from cellops.cli.output import Exit, Format, emit, errors, print_problems, say, short
from cellops.cli.params import BadParameter, Option, OutputOption, RepoArgument, RevOption
from cellops.model.errors import CellopsError, RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.render import render
from cellops.spec.loader import load_revision
from cellops.spec.revision import Revision

P = ParamSpec("P")
R = TypeVar("R")


def rejecting_on_failure(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command that judges a revision: an error cellops did not foresee (a bug a
    commit provoked) is reported in one line and rejects the revision (exit 1). The
    traceback is printed only with CELLOPS_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CellopsError, BadParameter, BrokenPipeError):
            raise  # foreseen: each has its exit status and message (a closed reader none)
        except Exception as exc:  # the point: no traceback, a rejection
            if os.environ.get("CELLOPS_DEBUG"):
                traceback.print_exc()
            message = f"{type(exc).__name__}: {exc}"[:300]
            errors.print(
                f"✗ cellops could not judge this revision ({message}): it is rejected."
                " This is a bug in cellops; CELLOPS_DEBUG=1 shows where.",
                markup=False,
            )
            raise SystemExit(Exit.REJECTED) from None

    return wrapper


def judge(repo: Path, rev: str, path: Path | None) -> tuple[Revision, tuple[Problem, ...]]:
    """The revision `rev` of `repo` (or the files under `path`) and the warnings the edge's
    checks found, as the controller would judge it. Raises RevisionRejected with every
    problem, or SourceError when it cannot be read."""
    revision = load_revision(read_snapshot(repo, rev, path))
    desired = render(revision)
    found = [p for c in edge_checks(repo, path) for p in c(revision, desired)]
    if any(p.severity is Severity.ERROR for p in found):
        raise RevisionRejected(revision.id, (*found, *revision.warnings))
    return revision, tuple(found)


@rejecting_on_failure
def validate(
    repo: Path = RepoArgument,
    rev: str = RevOption,
    path: Path | None = Option(
        None, "--path", "-p", help="Validate the files in this folder as they are (no commit)."
    ),
    output: Format = OutputOption,
) -> None:
    """Validate a revision of the fleet repo.

    Prints each problem as FILE:LINE: FIELD: MESSAGE. Exit status: 0 valid (warnings
    allowed), 1 invalid, 3 the repo or revision cannot be read.
    """
    try:
        revision, found = judge(repo, rev, path)
    except RevisionRejected as rejected:
        _report(rejected.revision, False, rejected.problems, fmt=output)
        raise SystemExit(Exit.REJECTED) from None
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
        say(f"✓ revision {short(rev)} is valid: {cells} cells, {services} services{extra}", "green")
    else:
        say(f"✗ revision {short(rev)} is rejected: {errors} error(s), {warnings} warning(s)", "red")
