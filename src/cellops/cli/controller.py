"""`cellops up` and `cellops down`: run the controller, stop everything."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cellops.cli.common import seconds, state_dir
from cellops.cli.listen import ListenOption, TlsCertOption, TlsKeyOption, as_args, listen_options
from cellops.cli.output import console, errors
from cellops.cli.params import FleetArgument, StateOption

if TYPE_CHECKING:  # the controller is loaded by the commands that run it, not at start
    from collections.abc import Sequence

    from cellops.api.serve import ListenOptions
    from cellops.controller.loop import ControllerLoop
    from cellops.controller.reconcile import Settings
    from cellops.notify.config import Target
    from cellops.wiring import Wiring

WebhookOption = typer.Option(
    None,
    "--webhook",
    min=0,
    max=65535,
    help="Serve the push webhook (with the API and /metrics) on this port (0: any free"
    " port): the older spelling of --listen.",
)


def up(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
    follow: str = typer.Option("HEAD", "--follow", help="Branch (or HEAD) to roll out."),
    poll: str = typer.Option("5s", "--poll", help="How often to look for new commits."),
    webhook: int | None = WebhookOption,
    webhook_host: str = typer.Option("127.0.0.1", "--webhook-host", help="Address to bind."),
    secret: str | None = typer.Option(
        None,
        "--webhook-secret",
        envvar="CELLOPS_WEBHOOK_SECRET",
        help="Shared secret: GitHub HMAC (X-Hub-Signature-256) or GitLab token. On the"
        " command line it is visible to every user in `ps`: prefer --webhook-secret-file or"
        " the environment variable.",
    ),
    secret_file: Path | None = typer.Option(
        None,
        "--webhook-secret-file",
        help="Read the shared secret from this file (its first line; `-`: standard input).",
    ),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background."),
    view: bool = typer.Option(True, "--view/--no-view", help="Show the live view."),
    resync: str = typer.Option(
        "15s",
        "--resync",
        help="How often a Kubernetes cell no rollout is watching is read for drift"
        " (each read lists its objects from the API server).",
    ),
    notify_config: Path | None = typer.Option(
        None,
        "--notify-config",
        help="Notification targets (URLs, formats, secrets), never from Git; default: the"
        " CELLOPS_NOTIFY_URL and CELLOPS_NOTIFY_SECRET variables. See docs/operations.md.",
    ),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        help="json: every line of output one JSON event, tracebacks inside (a detached"
        " controller's controller.log always is).",
    ),
    listen: str | None = ListenOption,
    tls_cert: Path | None = TlsCertOption,
    tls_key: Path | None = TlsKeyOption,
) -> None:
    """Start the controller: watch the fleet repo and roll each new commit out in waves.

    Cells (their agents and workloads) keep running when the controller stops; started
    again, it resumes any rollout where it stopped. Stop it with Ctrl-C, `cellops down`
    (which also stops the cells) or SIGTERM.
    """
    from cellops.backends.local import isolation
    from cellops.controller import process
    from cellops.controller.reconcile import Settings

    folder = state_dir(repo, state)
    interval, every = seconds(poll, "--poll"), seconds(resync, "--resync")
    secret = webhook_secret(secret, secret_file)
    listening = listen_options(listen, webhook, webhook_host, tls_cert, tls_key)
    if listening is not None and listening.option == "--webhook" and not secret:
        errors.print(
            "! --webhook without a secret: every push is refused (403) until one is given"
            " (--webhook-secret-file or CELLOPS_WEBHOOK_SECRET); new commits are still found"
            f" by polling every {poll}",
            style="yellow",
            markup=False,
        )
    from cellops.notify.config import load_targets

    if log_format not in ("text", "json"):
        raise typer.BadParameter("expected text or json", param_hint="--log-format")
    targets = load_targets(notify_config)  # bad targets: one line, before anything starts
    if detach:
        args = [
            "up",
            _absolute(repo),
            "--state-dir",
            str(folder),
            "--follow",
            follow,
            "--poll",
            poll,
            "--resync",
            resync,
            "--no-view",
            "--log-format",
            "json",
            *as_args(listening),
        ]
        args += ["--notify-config", str(notify_config.resolve())] if notify_config else []
        pid = process.spawn_detached(args, folder, secret=secret)
        _say_what_is_not_isolated(isolation.support().note())
        record = process.read_record(folder) or {}
        where = f", API on {record['api']}" if record.get("api") else ""
        console.print(
            f"[green]✓[/] controller running (pid {pid}{where});"
            f" logs in {folder / 'controller.log'}",
            soft_wrap=True,
        )
        return
    if log_format == "json":  # controller.log: JSON lines only (and no live view in it)
        view = False
        from cellops.observe.logs import JsonOutput

        JsonOutput().install()
    handle = process.lock(folder)
    try:
        _say_what_is_not_isolated(isolation.announce(folder))
        isolation.Isolation(folder).restore()
        settings = Settings(rev=follow, poll_interval=interval, resync=every)
        _serve(repo, folder, settings, view, secret, listening, targets=targets)
    finally:
        (folder / "controller.json").unlink(missing_ok=True)
        handle.close()


def _serve(
    repo: str,
    folder: Path,
    settings: Settings,
    view: bool,
    secret: str | None,
    listening: ListenOptions | None,
    *,
    targets: Sequence[Target] = (),
) -> None:
    """Run the controller (this process holds the folder's lock) until it is stopped."""
    from cellops.controller import process
    from cellops.controller.loop import ControllerLoop
    from cellops.eventlog import EventLog
    from cellops.observe import logs
    from cellops.observe.running import Observability
    from cellops.statedir import remember
    from cellops.wiring import wire

    wiring = wire(repo, folder, settings)
    loop = ControllerLoop(wiring.reconciler, settings.poll_interval)
    loop.install_signal_handlers()
    seen = Observability(wiring.store, wiring.store_path, wiring.peek, targets, Path(repo).name)
    loop.timed = seen.timed
    server = None
    try:
        seen.start()
        if listening is not None:  # the API, the webhook and /metrics
            server = _listen(wiring, loop, secret, listening, seen.routes(), wrap=seen.timer)
        url = server[2] if server is not None else None
        port = int(url.rsplit(":", 1)[1]) if url is not None else None
        process.write_record(folder, webhook=port, api=url, repo=_absolute(repo), ready=True)
        remember(repo, folder)  # commands run anywhere in the repo find this folder
        if url is not None:
            console.print(f"API: {url}/api/v1  webhook: {url}/webhook", markup=False)
        if view:
            _run_with_view(loop, wiring)
        else:
            loop.run(on_pass=EventLog(wiring.store, sys.stdout, logs.active()).flush)
    finally:
        if server is not None:
            server[0].stop()
            server[1].close()
        seen.close()
        wiring.close()


def _listen(
    wiring: Wiring,
    loop: ControllerLoop,
    secret: str | None,
    listening: ListenOptions,
    routes: Sequence[Any],
    *,
    wrap: Any = None,
) -> tuple[Any, Any, str]:
    """The API on its listener, with the webhook and `routes` behind a token, `wrap`
    around it all (the request timer): (the listener, its store connection, its URL)."""
    from cellops.api.serve import start_api
    from cellops.controller.reconcile import CURRENT

    def desired(store: Any) -> Any:
        current = store.setting(CURRENT)
        return wiring.compiler.known(current) if current else None

    return start_api(
        wiring.store_path,
        listening,
        observe=wiring.peek,
        desired=desired,
        wake=loop.wake,
        secret=secret,
        routes=routes,
        wrap=wrap,
    )


def webhook_secret(given: str | None, file: Path | None) -> str | None:
    """The webhook secret from the option, the environment or a file. It leaves this
    process's environment, so nothing the controller starts (cell agents, git, kubectl)
    inherits it."""
    os.environ.pop("CELLOPS_WEBHOOK_SECRET", None)
    if file is None:
        return given
    if given is not None:
        raise typer.BadParameter(
            "give the secret once: --webhook-secret (or CELLOPS_WEBHOOK_SECRET) or this file",
            param_hint="--webhook-secret-file",
        )
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise typer.BadParameter(
            f"cannot read {file}: {reason}", param_hint="--webhook-secret-file"
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise typer.BadParameter(f"{file} is empty", param_hint="--webhook-secret-file")
    return lines[0].strip()


def _say_what_is_not_isolated(note: str) -> None:
    if note:
        console.print(f"[yellow]![/] {note} See docs/operations.md, Isolation.", soft_wrap=True)


def _absolute(repo: str) -> str:
    from cellops.source.remote import is_url

    return repo if is_url(repo) else str(Path(repo).resolve())


def _run_with_view(loop: ControllerLoop, wiring: Wiring) -> None:
    from rich.live import Live

    from cellops.cli.views import overview

    last = 0.0
    with Live(overview(wiring.store, wiring.peek), console=console, auto_refresh=False) as live:

        def refresh() -> None:
            nonlocal last
            if time.time() - last >= 0.5:
                live.update(overview(wiring.store, wiring.peek), refresh=True)
                last = time.time()

        loop.run(on_pass=refresh)


def down(
    repo: str = FleetArgument,
    state: Path | None = StateOption,
) -> None:
    """Stop the controller, and every local cell's agent and workloads.

    Kubernetes cells keep running: their clusters serve without the controller.
    """
    from cellops.backends.local import isolation
    from cellops.backends.local.backend import LocalCells
    from cellops.controller import process

    folder = state_dir(repo, state)
    # the lock is held through the teardown: an `up` starting meanwhile cannot restart
    # cells (or need their network rules) while they are being removed
    with process.stopped(folder) as pid:
        said = f"stopped (pid {pid})" if pid else "was not running"
        console.print(f"controller {said}")
        local = LocalCells(folder, lambda tree, target: None)
        cells = sorted(p.name for p in (folder / "cells").glob("*") if p.is_dir())
        for cell in cells:
            local.stop(cell, workloads=True)
        isolation.Isolation(folder).release()  # the cells' users and network rules
    console.print(f"stopped {len(cells)} local cell(s) and their workloads")
