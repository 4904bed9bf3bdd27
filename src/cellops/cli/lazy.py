"""Commands loaded when they run, so that a command starts with only what it needs.

`cellops validate` imports the spec, the renderer and Git; not the controller, the API
server, the Kubernetes client or Helm. Typer would import every command's module (and
build every command's parameters) at each start: the group below knows each command by
the module and attribute that define it, and loads that one when it is run, or all of
them when `cellops --help` lists them.
"""

from __future__ import annotations

from importlib import import_module

import typer
import typer.main
from typer import _click as click
from typer.core import TyperGroup
from typer.models import CommandInfo

# name: "module:attribute", a command function or a Typer app of subcommands. In the order
# `cellops --help` lists them.
COMMANDS: dict[str, str] = {}


def lazy(name: str, target: str) -> None:
    """Register command `name`, defined by `target` ("cellops.cli.x:function")."""
    COMMANDS[name] = target


class LazyGroup(TyperGroup):
    """The root group: its own commands, then those in COMMANDS, each loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in COMMANDS if name not in eager)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        command = load(cmd_name)
        self.add_command(command, cmd_name)
        return command


def load(name: str) -> click.Command:
    """The click command for COMMANDS[name], its module imported now."""
    module, _, attribute = COMMANDS[name].partition(":")
    target = getattr(import_module(module), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=True,
        rich_markup_mode="rich",
    )
