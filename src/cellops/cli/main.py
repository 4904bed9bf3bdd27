"""The `cellops` command: typer app, error mapping to exit codes."""

from __future__ import annotations

import sqlite3

import typer

from cellops import __version__
from cellops.cli import controller, demo, dora, init, inspect, plan, render, schema, validate
from cellops.cli.output import Exit, errors
from cellops.cli.router import router_app
from cellops.cli.tenant import tenant_app
from cellops.model.errors import CellopsError, SourceError, StartupError

app = typer.Typer(
    name="cellops",
    help=(
        "cellops: a control plane for cell-based architecture, driven by GitOps.\n\n"
        "The fleet repo (a Git repository) holds cells, services and rollout policy."
        " These commands read it: validate a revision, plan its rollout in waves, render"
        " what one cell should run."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("init")(init.init)
app.command("validate")(validate.validate)
app.command("plan")(plan.plan)
app.command("render")(render.render_cell)
app.command("schema")(schema.schema)
app.command("up")(controller.up)
app.command("down")(controller.down)
app.command("status")(inspect.status)
app.command("history")(inspect.history)
app.command("logs")(inspect.logs)
app.command("dora")(dora.dora)
app.add_typer(inspect.rollout_app, name="rollout")
app.add_typer(router_app, name="router")
app.add_typer(tenant_app, name="tenant")


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
