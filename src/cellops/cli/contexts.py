"""`cellops config set-context | use-context | get-contexts`: which controller the CLI asks
(see `cli/remote.py` for the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cellops.atomic import write_atomic
from cellops.cli.output import Exit, console
from cellops.cli.remote import config_path, fail, load_config

config_app = typer.Typer(help="Controllers the CLI can ask: contexts.", no_args_is_help=True)


def _save(config: dict[str, Any]) -> None:
    """Write the file whole or not at all. It holds tokens: the new file is made by this
    process alone (O_EXCL, a random name, mode 0600, never a file or link that someone
    put there first), then renamed over the old one."""

    import yaml

    path = config_path()
    text = yaml.safe_dump(config, sort_keys=False)
    write_atomic(path, text.encode(), durable=True, folder_mode=0o700)


@config_app.command("set-context")
def set_context(
    name: str = typer.Argument(..., help="The context's name."),
    server: str | None = typer.Option(None, "--server", help="The API, https://host:8470."),
    token_file: Path | None = typer.Option(
        None, "--token-file", help="Read the token from this file (`-`: standard input)."
    ),
    ca: Path | None = typer.Option(
        None, "--certificate-authority", help="A CA certificate (PEM) the server's chains to."
    ),
    use: bool = typer.Option(True, "--use/--no-use", help="Make it the current context."),
) -> None:
    """Add a context or change it. The token is read from a file or standard input, never
    from the command line (every user sees that in `ps`)."""
    import sys

    config = load_config()
    entry = next((c for c in config["contexts"] if c.get("name") == name), None)
    if entry is None:
        entry = {"name": name}
        config["contexts"].append(entry)
    if server is not None:
        entry["server"] = server
    if token_file is not None:
        try:
            text = sys.stdin.read() if str(token_file) == "-" else token_file.read_text()
        except OSError as exc:
            fail(Exit.USAGE, f"cannot read {token_file}: {exc.strerror or exc}")
        entry["token"] = text.strip()
    if ca is not None:
        entry["certificate-authority"] = str(ca.resolve())
    if not entry.get("server"):
        fail(Exit.USAGE, f"context {name!r} needs --server")
    if use:
        config["current-context"] = name
    _save(config)
    console.print(f"context {name!r} saved in {config_path()}", markup=False)


@config_app.command("use-context")
def use_context(
    name: str = typer.Argument(..., help="A context's name; `-`: none (this host's state)."),
) -> None:
    """Ask this context's controller from now on (`-`: the state on this host)."""
    config = load_config()
    if name == "-":
        config.pop("current-context", None)
    elif not any(c.get("name") == name for c in config["contexts"]):
        known = ", ".join(str(c.get("name")) for c in config["contexts"]) or "none"
        fail(Exit.USAGE, f"no context {name!r} in {config_path()} (known: {known})")
    else:
        config["current-context"] = name
    _save(config)
    console.print(f"current context: {name}", markup=False)


@config_app.command("get-contexts")
def get_contexts() -> None:
    """The contexts, the current one marked (never their tokens)."""
    config = load_config()
    for entry in config["contexts"]:
        mark = "*" if entry.get("name") == config.get("current-context") else " "
        console.print(f"{mark} {entry.get('name')}  {entry.get('server')}", markup=False)
