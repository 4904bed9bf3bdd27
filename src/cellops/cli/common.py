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


StateOption = typer.Option(
    None,
    "--state-dir",
    envvar="CELLOPS_STATE_DIR",
    help="Where the controller keeps its state (default: per repo, under ~/.local/state).",
)


FleetArgument = typer.Argument(
    ".",
    help="The fleet repo: a local Git repository (default: here), or a URL that the"
    " controller clones into its state folder and fetches on every poll.",
)


def state_dir(repo: str | Path, explicit: Path | None) -> Path:
    from cellops.wiring import default_state_dir

    return explicit if explicit is not None else default_state_dir(repo)
