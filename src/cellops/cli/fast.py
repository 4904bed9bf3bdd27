"""The everyday commands without typer: a plain invocation parsed by argparse.

Typer and click cost about 60 ms of a start that should take under 0.3 s in all. For
`validate`, `plan`, `render`, `status` and `get` (commands.FAST), the parameters declared
with `params.Option`/`params.Argument` become an argparse parser here, from the same
declarations typer reads. Anything the parser is not sure of — `--help`, an unknown or
malformed option, a bad value, `CELLOPS_NO_FAST=1` — is left to typer, which gives its
usual message; so this path only ever runs what typer would run, the same way.
"""

from __future__ import annotations

import argparse
import inspect
import os
import types
from collections.abc import Callable
from enum import Enum
from importlib import import_module
from typing import Any, Union, get_args, get_origin

from cellops.cli.commands import COMMANDS, FAST
from cellops.cli.params import BadParameter, Param


class _Unsure(Exception):
    """Not for this path: typer takes the command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never print, never exit: typer will say it
        raise _Unsure(message)


def run_fast(argv: list[str]) -> bool:
    """Run `argv` if it is a plain invocation of an everyday command; False if not."""
    if not argv or argv[0] not in FAST or os.environ.get("CELLOPS_NO_FAST"):
        return False
    if not _plain(argv[1:]):
        return False
    module, _, attribute = COMMANDS[argv[0]].partition(":")
    command = getattr(import_module(module), attribute)
    try:
        kwargs = vars(parser_for(command).parse_args(argv[1:]))
    except _Unsure:
        return False
    try:
        command(**kwargs)
    except BadParameter:
        return False  # raised before the command did anything: typer reports it
    return True


def _plain(args: list[str]) -> bool:
    """Whether argparse reads these words as click does. Not `-o=json` (click's value is
    `=json`), nor a word like `-1` (argparse takes a negative number for a value or an
    argument where click sees an option): such a line goes to typer."""
    for arg in args:
        if arg == "--":
            return True
        if (
            arg[:1] == "-"
            and arg[1:2] != "-"
            and ("=" in arg or arg[1:2].isdigit() or arg[1:2] == ".")
        ):
            return False
    return True


def parser_for(command: Callable[..., Any]) -> argparse.ArgumentParser:
    """An argparse parser taking exactly the parameters `command` declares."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    for name, parameter in inspect.signature(command, eval_str=True).parameters.items():
        declared = parameter.default
        if not isinstance(declared, Param):
            raise _Unsure(f"{name}: not declared with cellops.cli.params")
        kind = _kind(parameter.annotation)
        if declared.argument:
            if kind is bool:
                raise _Unsure(f"{name}: a yes/no argument")
            nargs = None if declared.default is ... else "?"
            parser.add_argument(name, nargs=nargs, default=declared.default, type=kind)
        elif kind is bool:
            if declared.default is not False or any("/" in d for d in declared.decls):
                raise _Unsure(f"{name}: only plain on-flags are taken here")
            parser.add_argument(*declared.decls, dest=name, action="store_true")
        else:
            required = declared.default is ...
            default = None if required else _from_env(declared, kind)
            parser.add_argument(
                *declared.decls, dest=name, type=kind, default=default, required=required
            )
    return parser


def _kind(annotation: Any) -> Callable[[str], Any]:
    """The converter for an annotation: `X | None` is X; str, int, Path and enums."""
    if get_origin(annotation) in (Union, types.UnionType):
        others = [a for a in get_args(annotation) if a is not type(None)]
        if len(others) != 1:
            raise _Unsure(f"cannot convert to {annotation}")
        annotation = others[0]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation)
    if annotation is int:
        return _integer
    if annotation in (str, bool) or getattr(annotation, "__name__", "") == "Path":
        return annotation  # type: ignore[no-any-return]
    raise _Unsure(f"cannot convert to {annotation}")


def _integer(text: str) -> int:
    """Plain ASCII digits only: int() also takes other scripts' digits (fullwidth,
    Arabic-Indic), which typer refuses; what typer alone takes (`5.0`, ` 5`) is left to it."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise _Unsure(f"{text!r}: not plain digits")
    return int(text)


def _choice(enum: type[Enum]) -> Callable[[str], Any]:
    def convert(text: str) -> Enum:
        try:
            return enum(text)
        except ValueError:
            raise _Unsure(f"{text!r} is not one of {[e.value for e in enum]}") from None

    return convert


def _from_env(declared: Param, kind: Callable[[str], Any]) -> Any:
    """The default, or the value of its environment variable when that is set and not
    empty (as click reads it)."""
    value = os.environ.get(declared.envvar) if declared.envvar else None
    if not value:
        return declared.default
    try:
        return kind(value)
    except (ValueError, _Unsure):
        raise _Unsure(f"{declared.envvar}={value!r}") from None
