"""Commands loaded when they run, so that a command starts with only what it needs.

`cellops validate` imports the spec, the renderer and Git; not the controller, the API
server, the Kubernetes client or Helm. Typer would import every command's module (and
build every command's parameters) at each start: the group below knows each command by
the module and attribute that define it, and loads that one when it is run, or all of
them when `cellops --help` lists them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperGroup
from typer.models import CommandInfo

from cellops.cli.commands import COMMANDS
from cellops.cli.params import BadParameter, Param


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
        group = typer.main.get_group(typed_app(target))
        group.name = name
        return group
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=typed(target)),
        pretty_exceptions_short=True,
        rich_markup_mode="rich",
    )


def typed_app(app: typer.Typer) -> typer.Typer:
    """`app` with each command's and callback's `params` declarations made typer's."""
    for info in app.registered_commands:
        info.callback = typed(info.callback) if info.callback else None
    if app.registered_callback is not None and app.registered_callback.callback is not None:
        app.registered_callback.callback = typed(app.registered_callback.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            typed_app(group.typer_instance)
    return app


def typed(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` as typer takes it: each `params.Param` default made typer's Option or
    Argument, and `params.BadParameter` made typer's (usage, exit 2)."""
    if getattr(command, "__typed__", False):
        return command
    signature = inspect.signature(command, eval_str=True)

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BadParameter as exc:
            raise typer.BadParameter(exc.message, param_hint=exc.param_hint) from None

    parameters = [
        p.replace(default=_typer(p.default)) if isinstance(p.default, Param) else p
        for p in signature.parameters.values()
    ]
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__typed__ = True  # type: ignore[attr-defined]
    return run


def _typer(param: Param) -> Any:
    if param.argument:
        return typer.Argument(param.default, help=param.help, metavar=param.metavar)
    return typer.Option(param.default, *param.decls, help=param.help, envvar=param.envvar)
