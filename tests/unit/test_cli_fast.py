"""The everyday commands' fast path (cellops.cli.fast) runs what typer would run, the same
way: the same options from the same declarations, the same output and exit status, and
anything it is not sure of left to typer."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cellops.cli import fast
from cellops.cli.commands import COMMANDS, FAST
from cellops.cli.lazy import load
from cellops.cli.main import main
from tests.fleetrepo import FleetRepo


def _typer_options(name: str) -> dict[str, tuple[Any, ...]]:
    command = load(name)
    found = {}
    for param in command.params:
        if param.param_type_name == "option":
            for opt in (*param.opts, *param.secondary_opts):
                found[opt] = (param.name, param.required, param.is_flag, param.envvar)
        else:
            found[param.name or "?"] = (param.name, param.required, False, None)
    return found


def _command(name: str) -> Any:
    module, _, attribute = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def _argparse_options(name: str) -> dict[str, tuple[Any, ...]]:
    parser = fast.parser_for(_command(name))
    found = {}
    for action in parser._actions:
        if action.option_strings:
            for opt in action.option_strings:
                flag = action.nargs == 0
                found[opt] = (action.dest, action.required, flag, _envvar(name, action.dest))
        else:
            required = action.nargs is None
            found[action.dest] = (action.dest, required, False, None)
    return found


def _envvar(name: str, dest: str) -> str | None:
    return inspect.signature(_command(name)).parameters[dest].default.envvar  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(FAST))
def test_the_fast_parser_takes_exactly_the_options_typer_takes(name: str) -> None:
    assert _argparse_options(name) == _typer_options(name)


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, *, fast_path: bool) -> tuple[Any, ...]:
    monkeypatch.setattr("sys.argv", ["cellops", *args])
    if fast_path:
        monkeypatch.delenv("CELLOPS_NO_FAST", raising=False)
    else:
        monkeypatch.setenv("CELLOPS_NO_FAST", "1")
    code: object = 0
    with _captured() as (out, err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


INVOCATIONS = [
    ["validate", "{repo}"],
    ["validate", "{repo}", "-o", "json"],
    ["validate", "--output=yaml", "{repo}", "--rev", "HEAD"],
    ["validate", "{repo}", "--rev", "no-such-rev"],
    ["validate", "{repo}", "--path", "{repo}/cells"],
    ["validate", "/nonexistent-{pid}"],
    ["plan", "{repo}"],
    ["plan", "{repo}", "--to", "HEAD", "-o", "json"],
    ["render", "{repo}", "-c", "eu-1"],
    ["render", "{repo}", "--cell", "eu-1", "-ojson", "--no-validate"],
    ["render", "{repo}", "--cell", "nowhere"],
    ["render", "{repo}", "-c=eu-1"],  # click's value is "=eu-1", argparse's "eu-1"
    ["validate", "{repo}", "-o=json"],
    ["validate", "-1"],  # click: no such option; argparse: a negative number
    ["validate", "{repo}", "-p=."],
]


@pytest.mark.parametrize("args", INVOCATIONS, ids=[" ".join(a) for a in INVOCATIONS])
def test_a_command_says_the_same_on_either_path(
    example_fleet: FleetRepo, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    argv = [a.format(repo=example_fleet.path, pid=os.getpid()) for a in args]
    by_typer = _run(argv, monkeypatch, fast_path=False)
    by_argparse = _run(argv, monkeypatch, fast_path=True)
    assert by_argparse == by_typer


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--help"],
        ["validate", "-h"],
        ["validate", "--bogus"],
        ["validate", "-o", "xml"],
        ["validate", "--val"],  # no abbreviations: click has none
        ["render"],  # --cell is required
        ["get", "bogus"],  # a bad value found by the command itself
        ["get", "cells", "--limit", "many"],
        ["get", "cells", "--limit", "\uff15"],  # a fullwidth 5: int() takes it, typer not
        ["get", "cells", "-n=3"],
        ["validate", "-o=json"],
        ["validate", "-1"],
    ],
)
def test_what_the_fast_path_is_unsure_of_goes_to_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("CELLOPS_STATE_DIR", str(tmp_path / "no-state"))
    monkeypatch.chdir(tmp_path)
    with _captured():
        assert fast.run_fast(args) is False


def test_an_environment_variable_fills_an_option_as_click_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLOPS_STATE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CELLOPS_SERVER", "")  # empty: as if unset
    from cellops.cli.get import get

    namespace = fast.parser_for(get).parse_args(["cells"])
    assert namespace.state == tmp_path / "elsewhere"
    assert namespace.server is None


def test_ctrl_c_ends_either_path_quietly_with_130(
    example_fleet: FleetRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(repo: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cellops.cli.plan.open_repo", interrupted)
    for fast_path in (True, False):
        try:
            ended = _run(["plan", str(example_fleet.path)], monkeypatch, fast_path=fast_path)
        except KeyboardInterrupt:
            pytest.fail(f"a traceback (fast path: {fast_path})")
        assert ended == (130, "", "")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_went_away_ends_either_path_quietly_with_1(
    example_fleet: FleetRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["validate", str(example_fleet.path), "-o", "json"]
    for fast_path in (True, False):
        monkeypatch.setattr("sys.argv", ["cellops", *args])
        monkeypatch.setenv("CELLOPS_NO_FAST", "" if fast_path else "1")
        err = io.StringIO()
        with (
            contextlib.redirect_stdout(_ClosedPipe()),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as exited,
        ):
            main()
        assert (exited.value.code, err.getvalue()) == (1, ""), fast_path
