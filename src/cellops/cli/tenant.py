"""`cellops tenant`: where a tenant lives, and moving one (a commit to tenants/)."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import typer

from cellops.cli.common import open_repo
from cellops.cli.output import Exit, errors, print_problems
from cellops.model.errors import RevisionRejected
from cellops.model.snapshot import FileBlob, Snapshot
from cellops.router.tablefile import read_table
from cellops.spec.documents import parse_document
from cellops.spec.loader import load_revision
from cellops.spec.revision import Revision
from cellops.spec.tenants import TenantsDocument
from cellops.tenancy.moves import NEW_FILE, MoveError, move_in_file, new_listing
from cellops.tenancy.table import TableError

tenant_app = typer.Typer(help="Tenants: where one lives; move one to another cell.")
RepoOption = typer.Option(Path("."), "--repo", help="The fleet repo (a Git working copy).")


@tenant_app.command("where")
def where(
    tenant: str,
    table: Path = typer.Option(Path("routing.json"), "--table", "-t", help="The routing table."),
) -> None:
    """The cell a tenant is routed to by the published table."""
    try:
        routing = read_table(table)
    except TableError as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise typer.Exit(Exit.SOURCE) from None
    cell = routing.lookup(tenant)
    listed = "listed" if tenant in routing.tenants else "by the hash"
    typer.echo(f"{tenant}: {cell} ({listed}; table version {routing.version})")


@tenant_app.command("move")
def move(tenant: str, cell: str, repo: Path = RepoOption) -> None:
    """Pin TENANT to CELL in tenants/ and commit that file alone (validated first)."""
    snapshot = open_repo(repo).snapshot("HEAD")
    revision = load_revision(snapshot)
    if cell not in revision.cells:
        errors.print(f"✗ unknown cell {cell!r}: expected one of {', '.join(revision.cells)}")
        raise typer.Exit(Exit.USAGE)
    path, text = _edit(snapshot, revision, tenant, cell)
    target = repo / path
    if (
        target.exists()
        and path in snapshot.files
        and target.read_bytes() != snapshot.files[path].data
    ):
        errors.print(f"✗ {path} has uncommitted changes: commit or discard them first")
        raise typer.Exit(Exit.USAGE)
    files = dict(snapshot.files)
    files[path] = FileBlob("edit:" + hashlib.sha1(text.encode()).hexdigest(), text.encode())
    try:
        load_revision(replace(snapshot, files=files), previous=revision)
    except RevisionRejected as rejected:
        errors.print(f"✗ moving {tenant} to {cell} would be rejected:", markup=False)
        print_problems(rejected.problems)
        raise typer.Exit(Exit.REJECTED) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    commit = _commit(repo, path, f"Move tenant {tenant} to cell {cell}")
    typer.echo(f"moved {tenant} to {cell}: {path}, commit {commit[:12]}")


def _edit(snapshot: Snapshot, revision: Revision, tenant: str, cell: str) -> tuple[str, str]:
    for path, document in revision.tenants.items():
        if any(t.id == tenant for t in document.spec.tenants):
            blob = snapshot.files[path]
            parsed = parse_document(path, blob, TenantsDocument)
            try:
                return path, move_in_file(blob.data.decode(), parsed, tenant, cell)
            except MoveError as exc:
                errors.print(f"✗ {exc}", markup=False)
                raise typer.Exit(Exit.USAGE) from None
    existing = snapshot.files.get(NEW_FILE)
    return NEW_FILE, new_listing(existing.data.decode() if existing else None, tenant, cell)


def _commit(repo: Path, path: str, message: str) -> str:
    git = ["git", "-C", str(repo)]
    known = subprocess.run([*git, "config", "user.email"], capture_output=True, check=False)
    if known.returncode != 0:  # no identity configured: commit as cellops
        git += ["-c", "user.name=cellops", "-c", "user.email=cellops@localhost"]
    try:
        subprocess.run([*git, "add", "--", path], check=True, capture_output=True, text=True)
        subprocess.run(
            [*git, "commit", "-q", "-m", message, "--", path],
            check=True,
            capture_output=True,
            text=True,
        )
        done = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as exc:
        errors.print(f"✗ git failed: {exc.stderr.strip()}", markup=False)
        raise typer.Exit(Exit.SOURCE) from None
    return done.stdout.strip()
