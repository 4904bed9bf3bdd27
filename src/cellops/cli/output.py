"""Output for people (rich) and for machines (JSON, YAML), and the exit codes scripts trust."""

from __future__ import annotations

import json
import sys
from enum import IntEnum, StrEnum

import typer
import yaml
from rich.console import Console

from cellops.model.problems import Problem, Severity

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)  # never wrap an error


class Exit(IntEnum):
    OK = 0
    REJECTED = 1  # the revision is invalid
    USAGE = 2  # bad command line (typer/click use 2 as well)
    SOURCE = 3  # the repo or revision cannot be read


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


OutputOption = typer.Option(
    Format.TEXT, "--output", "-o", help="text for people; json or yaml for scripts."
)


def emit(data: object, fmt: Format) -> None:
    """Write machine-readable output to stdout, unstyled."""
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def print_problems(problems: tuple[Problem, ...] | list[Problem]) -> None:
    for problem in problems:
        style = "red" if problem.severity is Severity.ERROR else "yellow"
        console.print(str(problem), style=style, markup=False, soft_wrap=True)


def short(rev: str | None) -> str:
    if rev is None:
        return "(nothing)"
    return rev if rev.startswith("worktree:") else rev[:12]
