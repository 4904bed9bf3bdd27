"""`cellops up --listen HOST:PORT [--tls-cert F --tls-key F]`: where the API, the webhook
and /metrics are served. `--webhook PORT` (with `--webhook-host`) is the older spelling
of the same listener."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cellops.api.serve import ListenOptions

ListenOption = typer.Option(
    None,
    "--listen",
    help="Serve the API, the push webhook and /metrics on HOST:PORT (e.g. 127.0.0.1:8470;"
    " port 0: any free one). Every path but /healthz and /webhook needs a token from"
    " `cellops token create`.",
)
TlsCertOption = typer.Option(
    None, "--tls-cert", help="Serve HTTPS with this certificate (PEM), with --tls-key."
)
TlsKeyOption = typer.Option(None, "--tls-key", help="The certificate's private key (PEM).")


def listen_options(
    listen: str | None,
    webhook: int | None,
    webhook_host: str,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> ListenOptions | None:
    """The listener asked for, or None; bad usage (exit 2) names the option at fault."""
    from cellops.api.listener import parse_listen
    from cellops.api.serve import ListenOptions

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter(
            "give both --tls-cert and --tls-key, or neither",
            param_hint="--tls-key" if tls_key is None else "--tls-cert",
        )
    tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    if tls is not None:
        for path, hint in zip(tls, ("--tls-cert", "--tls-key"), strict=True):
            if not path.is_file():
                raise typer.BadParameter(f"{path}: no such file", param_hint=hint)
    if listen is not None and webhook is not None:
        raise typer.BadParameter(
            "--webhook PORT is the older spelling of --listen: give one of them",
            param_hint="--listen",
        )
    if webhook is not None:  # its range is checked by its option
        listen = (
            f"[{webhook_host}]:{webhook}" if ":" in webhook_host else f"{webhook_host}:{webhook}"
        )
        option, what = "--webhook", "the webhook"
    else:
        option, what = "--listen", "the API"
    if listen is None:
        if tls is not None:
            raise typer.BadParameter("TLS needs a listener: give --listen", param_hint="--tls-cert")
        return None
    try:
        host, port = parse_listen(listen, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if tls is None and _beyond_loopback(host):
        typer.echo(
            f"! {option} serves the API, the dashboard and the webhook on {host or 'every'}"
            " address over plain HTTP: tokens and the dashboard's cookie cross the network"
            " in the clear. Give --tls-cert and --tls-key, or put a TLS proxy in front.",
            err=True,
        )
    return ListenOptions(host, port, tls, option, what)


def _beyond_loopback(host: str) -> bool:
    """Reachable from other machines (a name may resolve anywhere)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def as_args(options: ListenOptions | None) -> list[str]:
    """The options again, for a detached `up`."""
    if options is None:
        return []
    host = f"[{options.host}]" if ":" in options.host else options.host
    if options.option == "--webhook":  # as given, so that its errors name it
        args = ["--webhook", str(options.port), "--webhook-host", options.host]
    else:
        args = ["--listen", f"{host}:{options.port}"]
    if options.tls is not None:
        args += [
            "--tls-cert",
            str(options.tls[0].resolve()),
            "--tls-key",
            str(options.tls[1].resolve()),
        ]
    return args
