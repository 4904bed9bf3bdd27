"""The `cellops` command: typer app, error mapping to exit codes."""

from __future__ import annotations

import sqlite3

import typer

from cellops import __version__
from cellops.cli.lazy import LazyGroup, lazy
from cellops.cli.output import Exit, errors
from cellops.model.errors import CellopsError, SourceError, StartupError

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
# Each command's module is imported only when that command runs (cellops.cli.lazy): a
# command that starts the controller or a server must not slow `validate` or `status`.
lazy("init", "cellops.cli.init:init")
lazy("validate", "cellops.cli.validate:validate")
lazy("plan", "cellops.cli.plan:plan")
lazy("render", "cellops.cli.render:render_cell")
lazy("schema", "cellops.cli.schema:schema")
lazy("up", "cellops.cli.controller:up")
lazy("down", "cellops.cli.controller:down")
lazy("status", "cellops.cli.status:status")
lazy("history", "cellops.cli.status:history")
lazy("get", "cellops.cli.get:get")
lazy("describe", "cellops.cli.describe:describe_app")
lazy("events", "cellops.cli.events:events")
lazy("diff", "cellops.cli.diff:diff")
lazy("logs", "cellops.cli.logs:logs")
lazy("rollout", "cellops.cli.inspect:rollout_app")
lazy("promote", "cellops.cli.operate:promote")
lazy("rollback", "cellops.cli.operate:rollback")
lazy("token", "cellops.cli.token:token_app")
lazy("config", "cellops.cli.contexts:config_app")
lazy("dora", "cellops.cli.dora:dora")
lazy("scorecard", "cellops.cli.dora:scorecard")
lazy("router", "cellops.cli.router:router_app")
lazy("tenant", "cellops.cli.tenant:tenant_app")
lazy("demo", "cellops.cli.demo:demo")


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


def main() -> None:
    try:
        app()
    except (SourceError, StartupError) as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise SystemExit(Exit.SOURCE) from None
    except CellopsError as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise SystemExit(Exit.REJECTED) from None
    except sqlite3.Error as exc:  # the store failed after it opened (damage deeper in it)
        errors.print(
            f'✗ the controller\'s store failed: {exc}: see docs/operations.md, "Store faults"',
            markup=False,
        )
        raise SystemExit(Exit.SOURCE) from None


if __name__ == "__main__":
    main()
