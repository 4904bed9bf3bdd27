"""Command-line parameters declared without typer, and the ones commands share.

The everyday commands (`validate`, `plan`, `render`, `status`, `get`) declare their
parameters with `Option` and `Argument` from here. One declaration serves both ways in:
`lazy.py` turns it into typer's parameter (`cellops --help`, every other command), and
`fast.py` into argparse's for a plain invocation, which starts without importing typer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellops.cli.output import Format


@dataclass(frozen=True)
class Param:
    """One parameter as typer.Option/typer.Argument take it (the subset cellops uses)."""

    default: Any  # ... (Ellipsis) when it must be given
    decls: tuple[str, ...] = ()  # "--rev", "-r"; none for an argument
    help: str = ""
    envvar: str | None = None
    metavar: str | None = None
    argument: bool = False


def Option(  # noqa: N802 - spelled as typer's, which it stands for
    default: Any, *decls: str, help: str = "", envvar: str | None = None
) -> Any:
    return Param(default, decls, help, envvar)


def Argument(default: Any, *, help: str = "", metavar: str | None = None) -> Any:  # noqa: N802
    return Param(default, (), help, None, metavar, argument=True)


class BadParameter(Exception):
    """A parameter's value is wrong: bad usage (exit 2), with the parameter named."""

    def __init__(self, message: str, param_hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.param_hint = param_hint


RepoArgument = Argument(
    Path("."), help="The fleet repo: a Git repository (default: the current directory)."
)
RevOption = Option("HEAD", "--rev", "-r", help="Commit, branch or tag to read.")
StateOption = Option(
    None,
    "--state-dir",
    envvar="CELLOPS_STATE_DIR",
    help="Where the controller keeps its state (default: per repo, under ~/.local/state).",
)
FleetArgument = Argument(
    ".",
    help="The fleet repo: a local Git repository (default: here), or a URL that the"
    " controller clones into its state folder and fetches on every poll.",
)
OutputOption = Option(
    Format.TEXT, "--output", "-o", help="text for people; json or yaml for scripts."
)
ServerOption = Option(
    None,
    "--server",
    envvar="CELLOPS_SERVER",
    help="A controller's API (https://host:8470): ask it instead of the state on this"
    " host. Token: CELLOPS_TOKEN or the config file's context (`cellops config`).",
)
