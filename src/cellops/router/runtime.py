"""HAProxy's runtime API over its stats socket: the map changes without a reload.

`sync_map` reads the live map (`show map`) and applies only the differences with
`set map` / `add map` / `del map`, so a tenant move is one command and no connection drops.
"""

from __future__ import annotations

import socket
from pathlib import Path


class HaproxyError(Exception):
    """HAProxy refused a runtime command or its socket cannot be reached."""


def command(sock_path: Path, line: str, timeout: float = 5.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(sock_path))
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            raise HaproxyError(f"HAProxy runtime socket {sock_path}: {exc}") from None
    return b"".join(chunks).decode(errors="replace")


def live_map(sock_path: Path, map_path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for row in command(sock_path, f"show map {map_path}").splitlines():
        parts = row.split()
        if len(parts) == 3:  # <id> <key> <value>
            found[parts[1]] = parts[2]
    return found


def live_backends(sock_path: Path) -> set[str]:
    return {row.strip() for row in command(sock_path, "show backend").splitlines()} - {""}


def sync_map(sock_path: Path, map_path: str, wanted: dict[str, str]) -> int:
    """Make the live map equal `wanted`; the number of commands sent. A tenant whose cell
    HAProxy has no backend for would go to the hashed backend (another cell): refused."""
    missing = sorted(set(wanted.values()) - live_backends(sock_path))
    if missing:
        raise HaproxyError(
            f"HAProxy has no backend {', '.join(missing)}: its tenants would be hashed onto"
            " other cells; export the config and reload HAProxy first (nothing was changed)"
        )
    live = live_map(sock_path, map_path)
    commands = [f"del map {map_path} {k}" for k in live if k not in wanted]
    for key, value in wanted.items():
        if key not in live:
            commands.append(f"add map {map_path} {key} {value}")
        elif live[key] != value:
            commands.append(f"set map {map_path} {key} {value}")
    for line in commands:
        answer = command(sock_path, line).strip()
        if answer and not answer.startswith("Done"):
            raise HaproxyError(f"HAProxy refused {line!r}: {answer}")
    return len(commands)
