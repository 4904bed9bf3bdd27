"""`cellops router`: run the embedded router, publish its table, export engine configs."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path

import typer

from cellops.cli.common import open_repo
from cellops.cli.output import errors
from cellops.cli.params import RepoArgument, RevOption
from cellops.model.errors import StartupError
from cellops.router.bulkhead import Limits
from cellops.router.engines import (
    EngineError,
    haproxy_config,
    haproxy_map,
    map_lines,
    nginx_config,
    nginx_server,
)
from cellops.router.runtime import HaproxyError, sync_map
from cellops.router.tablefile import publish, read_table
from cellops.spec.loader import load_revision
from cellops.tenancy.fleet import routing_table
from cellops.tenancy.table import RoutingTable, TableError

router_app = typer.Typer(help="The tenant router: run it, publish its table, export configs.")
TableOption = typer.Option(Path("routing.json"), "--table", "-t", help="The routing table file.")


class EngineFormat(StrEnum):
    HAPROXY = "haproxy"
    NGINX = "nginx"


def _limits(max_connections: int, timeout: float) -> Limits:
    return Limits(max_connections=max_connections, timeout=timeout)


def _table(path: Path) -> RoutingTable:
    try:
        return read_table(path)
    except TableError as exc:
        raise StartupError(f"no usable routing table: {exc}") from None


@router_app.command("run")
def run(
    table: Path = TableOption,
    listen: str = typer.Option("127.0.0.1:8000", "--listen", help="HOST:PORT (port 0: any)."),
    max_connections: int = typer.Option(256, help="Requests in flight to one cell."),
    timeout: float = typer.Option(10.0, help="Seconds a cell has to answer a request."),
) -> None:
    """Route each request to its tenant's cell; reload the table when its file changes."""
    import asyncio

    from cellops.router.server import Router, serve

    host, _, port = listen.rpartition(":")
    _table(table)
    router = Router(table, _limits(max_connections, timeout))
    import uvloop  # libuv's event loop: about a third more requests per core than asyncio's

    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(serve(router, host or "127.0.0.1", int(port)))


@router_app.command("table")
def table_command(
    repo: Path = RepoArgument,
    rev: str = RevOption,
    out: Path = typer.Option(
        Path("routing.json"), "--out", "-o", "--table", help="The routing table file to write."
    ),
) -> None:
    """Place the revision's tenants and publish the routing table (atomically, versioned)."""
    revision = load_revision(open_repo(repo).snapshot(rev))
    table = routing_table(revision.fleet, revision.cells, revision.tenants, revision.id, 1)
    written = publish(out, table)
    typer.echo(f"{out}: version {written.version}, {len(written.tenants)} tenant(s) listed")


@router_app.command("export")
def export(
    fmt: EngineFormat = typer.Option(..., "--format", "-f"),
    table: Path = TableOption,
    out: Path = typer.Option(Path("."), "--out", "-o", help="Folder for the files."),
    listen: str = typer.Option("127.0.0.1:8000", "--listen", help="Where the engine listens."),
    max_connections: int = typer.Option(256, help="Connections to one cell."),
    timeout: float = typer.Option(10.0, help="Seconds a cell has to answer."),
) -> None:
    """Write an HAProxy configuration and map, or an nginx map configuration."""
    routing = _table(table)
    limits = _limits(max_connections, timeout)
    map_path = out / "tenants.map"
    try:  # every file made before any is written: a refused table leaves `out` as it was
        if fmt is EngineFormat.HAPROXY:
            sock = str((out / "haproxy.sock").resolve())
            config = haproxy_config(routing, listen, str(map_path.resolve()), sock, limits)
            files = {map_path: haproxy_map(routing), out / "haproxy.cfg": config}
        else:
            server = nginx_server(listen, limits, routing.key, routing.header)
            files = {
                out / "cellops-map.conf": nginx_config(routing, limits),
                out / "cellops-server.conf": server,
            }
    except EngineError as exc:
        raise StartupError(f"cannot export for {fmt.value}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    typer.echo("wrote " + " and ".join(str(p) for p in files))


@router_app.command("haproxy-sync")
def haproxy_sync(
    table: Path = TableOption,
    socket: Path = typer.Option(..., "--socket", help="HAProxy's admin stats socket."),
    map_file: Path = typer.Option(..., "--map", help="The map file HAProxy loaded."),
) -> None:
    """Apply the table's tenants to a running HAProxy through its runtime API (no reload)."""
    routing = _table(table)
    try:
        sent = sync_map(socket, str(map_file.resolve()), map_lines(routing))
    except HaproxyError as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise typer.Exit(2) from None
    map_file.write_text(haproxy_map(routing))  # a restart then loads what runs now
    typer.echo(f"{sent} change(s) applied (table version {routing.version})")
