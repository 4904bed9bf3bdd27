"""`cellops render`: the desired state of one cell at one revision."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from cellops.cli.common import manifest_cache, read_snapshot
from cellops.cli.output import Exit, Format, emit, errors, say, short
from cellops.cli.params import Option, OutputOption, RepoArgument, RevOption
from cellops.cli.table import echo
from cellops.cli.validate import judge, rejecting_on_failure
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.render import DesiredCell, render
from cellops.spec.cell import KubernetesBackend
from cellops.spec.loader import load_revision
from cellops.spec.revision import Revision


@rejecting_on_failure
def render_cell(
    repo: Path = RepoArgument,
    cell: str = Option(..., "--cell", "-c", help="The cell to render."),
    rev: str = RevOption,
    path: Path | None = Option(
        None, "--path", "-p", help="Render the files in this folder as they are (no commit)."
    ),
    output: Format = OutputOption,
    no_validate: bool = Option(
        False,
        "--no-validate",
        help="Render a revision that validation rejects (only its fleet files must parse):"
        " its objects may fail to apply, or leave the cell.",
    ),
) -> None:
    """Show what one cell should run: each service's effective spec and content hash.

    For a Kubernetes cell, -o yaml prints the objects that would be applied, as a YAML
    stream that `kubectl apply -f -` accepts. The revision is validated first, as
    `cellops validate` does: a rejected one prints its problems and nothing else (exit 1).
    """
    revision = _revision(repo, rev, path, validate=not no_validate)
    desired = render(revision).cells.get(cell)
    if desired is None:
        known = ", ".join(revision.cells)
        say(f"✗ no cell {cell!r} at {short(revision.id)} (cells: {known})", "red")
        raise SystemExit(Exit.USAGE)
    if isinstance(desired.spec.backend, KubernetesBackend) and output is Format.YAML:
        # exactly what would be applied: `cellops render -c CELL -o yaml | kubectl apply -f -`
        objects = kubernetes_objects(desired, revision.id, repo, path)
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    elif output is Format.TEXT:
        _print(desired, revision.id)
    else:
        emit(cell_document(desired, revision.id), output)


def _revision(repo: Path, rev: str, path: Path | None, *, validate: bool) -> Revision:
    """The revision to render, judged first as `validate` judges it unless told not to.
    Problems go to stderr: stdout is for what is rendered (and may be piped to kubectl)."""
    try:
        if validate:
            revision, found = judge(repo, rev, path)
            _print_problems((*revision.warnings, *found))
            return revision
        return load_revision(read_snapshot(repo, rev, path))
    except RevisionRejected as rejected:
        _print_problems(rejected.problems)
        errors.print(
            f"✗ revision {short(rejected.revision)} is rejected: nothing rendered"
            " (--no-validate renders it anyway)",
            markup=False,
        )
        raise SystemExit(Exit.REJECTED) from None


def _print_problems(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        style = "red" if problem.severity is Severity.ERROR else "yellow"
        errors.print(str(problem), style=style, markup=False)


def kubernetes_objects(
    cell: DesiredCell, revision: str, repo: Path, path: Path | None
) -> list[dict[str, Any]]:
    """The objects a Kubernetes cell is given: cellops' own and each service's (manifests/,
    chart, materialised from the folder or exported from Git, as validation builds them).
    A manifest that does not build is one line and exit 1."""
    from cellops.backends.kubernetes.manifests import ManifestError, own_objects
    from cellops.render.kubernetes import ManifestObjectError, cell_objects

    try:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            cache = manifest_cache(repo, path, Path(scratch))
            own = own_objects(cache, cell, cell.services)
        return cell_objects(cell, revision, own)
    except (ManifestError, ManifestObjectError) as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise SystemExit(Exit.REJECTED) from None


def cell_document(cell: DesiredCell, revision: str) -> dict[str, object]:
    return {
        "cell": cell.name,
        "revision": revision,
        "labels": dict(cell.labels),
        "state": str(cell.state),
        "backend": cell.spec.backend.model_dump(mode="json", by_alias=True, exclude_none=True),
        "services": {
            name: {
                "hash": service.hash,
                "code": service.code,
                "dependsOn": list(service.depends_on),
                "spec": service.spec.model_dump(
                    mode="json",
                    by_alias=True,
                    exclude_none=True,
                    exclude={"cells", "overrides"},
                ),
            }
            for name, service in cell.services.items()
        },
    }


def _print(cell: DesiredCell, revision: str) -> None:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(cell.labels.items()))
    say(f"Cell {cell.name} at {short(revision)} ({cell.spec.backend.type}, {cell.state}; {labels})")
    rows = [
        [name, s.hash[:12], s.spec.replicas, s.spec.image, (s.code or "-")[:12]]
        for name, s in cell.services.items()
    ]
    echo(["service", "hash", "replicas", "image", "code"], rows)
    say("Use -o yaml for the full effective spec of each service.")
