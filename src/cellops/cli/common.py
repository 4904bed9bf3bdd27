"""Arguments shared by the commands, and the source they name."""

from __future__ import annotations

from pathlib import Path

import typer

from cellops.source.git import GitSource

RepoArgument = typer.Argument(
    Path("."), help="The fleet repo: a Git repository (default: the current directory)."
)
RevOption = typer.Option("HEAD", "--rev", "-r", help="Commit, branch or tag to read.")


def open_repo(repo: Path) -> GitSource:
    return GitSource(repo)
