"""The `cellops` command as a typer app: every command, `--help` and `--version`."""

from __future__ import annotations

import typer

from cellops import __version__
from cellops.cli.lazy import LazyGroup

app = typer.Typer(
    name="cellops",
    cls=LazyGroup,
    help=(
        "cellops: a control plane for cell-based architecture, driven by GitOps.\n\n"
        "The fleet repo (a Git repository) holds cells, services and rollout policy."
        " Validate a revision, plan its rollout in waves and render what a cell should run;"
        " run the controller that rolls each commit out; and see what the cells run, the"
        " rollout, its history and events."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Each command's module is imported only when that command runs (cellops.cli.lazy and
# cellops.cli.commands): a command that starts the controller or a server must not slow
# `validate` or `status`.


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cellops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    del version
