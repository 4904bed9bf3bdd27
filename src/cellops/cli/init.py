"""`cellops init`: a working fleet repo to start from, copied from the example fleet."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from cellops.cli.output import Exit, console, errors


def example_fleet() -> Path:
    """The example fleet: packaged in the wheel, or in the source checkout."""
    packaged = Path(__file__).parents[1] / "_example_fleet"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).parents[3] / "examples" / "fleet"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the example fleet is missing from this installation")


def init(
    directory: Path = typer.Argument(..., help="Where to create the fleet repo (new or empty)."),
) -> None:
    """Create a fleet repo: the example fleet (6 cells, 2 services), git init, first commit."""
    if directory.exists() and not directory.is_dir():
        errors.print(f"✗ {directory} is a file; choose a new folder", markup=False)
        raise typer.Exit(Exit.USAGE)
    if directory.exists() and any(directory.iterdir()):
        errors.print(f"✗ {directory} is not empty; choose a new folder", markup=False)
        raise typer.Exit(Exit.USAGE)
    try:
        shutil.copytree(
            example_fleet(),
            directory,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    except OSError as exc:  # a parent that is a file, no write access, a full disk
        reason = exc.strerror or exc
        errors.print(f"✗ cannot create the fleet repo in {directory}: {reason}", markup=False)
        raise typer.Exit(Exit.USAGE) from None
    from cellops.source.git import create_repository

    commit = create_repository(directory, "Initial fleet (cellops init)")
    console.print(f"[green]✓[/] fleet repo created in {directory} at {commit[:12]}")
    console.print(f"  next: cellops validate {directory} && cellops plan {directory}", markup=False)
