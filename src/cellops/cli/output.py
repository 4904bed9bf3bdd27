"""Output for people (rich) and for machines (JSON, YAML), and the exit codes scripts trust.

`say` writes one plain line (coloured on a terminal): the everyday commands print with it
and never load rich, which costs a tenth of their start. `console` and `errors` are rich
consoles, made when first used (tables, live views, errors).
"""

from __future__ import annotations

import json
import os
import sys
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, cast

from cellops.model.problems import Problem, Severity

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console, made (and rich imported) at its first use."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


console = cast("Console", _LazyConsole(highlight=False))
errors = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))  # no wrap

_ANSI = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def say(text: str, style: str | None = None, *, err: bool = False) -> None:
    """One line as it is (never wrapped), in colour `style` on a terminal without NO_COLOR."""
    stream = sys.stderr if err else sys.stdout
    if style and "NO_COLOR" not in os.environ and stream.isatty():
        text = f"\x1b[{_ANSI[style]}m{text}\x1b[0m"
    stream.write(text + "\n")


class Exit(IntEnum):
    OK = 0
    REJECTED = 1  # the revision is invalid
    USAGE = 2  # bad command line (typer/click use 2 as well)
    SOURCE = 3  # the repo or revision cannot be read


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


def emit(data: object, fmt: Format) -> None:
    """Write machine-readable output to stdout, unstyled."""
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        import yaml  # only here: a command that reads no YAML writes JSON and text without it

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def print_problems(problems: tuple[Problem, ...] | list[Problem]) -> None:
    for problem in problems:
        say(str(problem), "red" if problem.severity is Severity.ERROR else "yellow")


def short(rev: str | None) -> str:
    if rev is None:
        return "(nothing)"
    return rev if rev.startswith("worktree:") else rev[:12]
