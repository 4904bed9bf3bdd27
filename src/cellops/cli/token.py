"""`cellops token create | list | revoke`: the API's bearer tokens, in the controller's
store on this host. A new token is printed once, alone on standard output (so that
`TOKEN=$(cellops token create --role viewer)` works); only its SHA-256 is kept."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cellops.cli.common import seconds, state_dir
from cellops.cli.output import Exit, Format, console, emit, errors
from cellops.cli.params import FleetArgument, OutputOption, StateOption

if TYPE_CHECKING:
    from cellops.store.sqlite import SqliteStore

token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


class RoleChoice(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


def _store(repo: str, state: Path | None) -> SqliteStore:
    from cellops.store.lost import open_store

    return open_store(state_dir(repo, state))


@token_app.command("create")
def create(
    role: RoleChoice = typer.Option(
        ..., "--role", help="viewer: reads, events, /metrics; operator: also every write."
    ),
    name: str | None = typer.Option(None, "--name", help="What it is for (default: a new name)."),
    expires: str | None = typer.Option(None, "--expires", help="Valid for this long (30d, 12h)."),
    repo: str = FleetArgument,
    state: Path | None = StateOption,
) -> None:
    """A new token, printed once: keep it, cellops cannot show it again."""
    from cellops.store.tokens import Role, new_name

    lifetime = seconds(expires, "--expires") if expires else None
    now = time.time()
    store = _store(repo, state)
    try:
        record, token = store.create_token(
            name or new_name(), Role(role.value), now, None if lifetime is None else now + lifetime
        )
    finally:
        store.close()
    errors.print(f"token {record.name!r} ({record.role}, id {record.id}) created", markup=False)
    typer.echo(token)


@token_app.command("list")
def list_tokens(
    repo: str = FleetArgument, state: Path | None = StateOption, output: Format = OutputOption
) -> None:
    """Every token: name, role, created, expiry, revoked (never the token)."""
    from rich.table import Table

    from cellops.query.base import iso

    store = _store(repo, state)
    try:
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "role": str(t.role),
                "created": iso(t.created),
                "expires": iso(t.expires),
                "revoked": iso(t.revoked),
            }
            for t in store.tokens()
        ]
    finally:
        store.close()
    if output is not Format.TEXT:
        emit(rows, output)
        return
    table = Table("id", "name", "role", "created", "expires", "revoked")
    for row in rows:
        table.add_row(
            *(str(row[k] or "-") for k in ("id", "name", "role", "created", "expires", "revoked"))
        )
    console.print(table)


@token_app.command("revoke")
def revoke(
    token: str = typer.Argument(..., help="The token's name or id."),
    repo: str = FleetArgument,
    state: Path | None = StateOption,
) -> None:
    """Revoke a token: the API refuses it from its next request on."""
    store = _store(repo, state)
    try:
        revoked = store.revoke_token(token, time.time())
    finally:
        store.close()
    if not revoked:
        errors.print(f"✗ no valid token named {token!r} (see `cellops token list`)", markup=False)
        raise typer.Exit(Exit.USAGE)
    for record in revoked:
        console.print(f"token {record.name!r} (id {record.id}) revoked", markup=False)
