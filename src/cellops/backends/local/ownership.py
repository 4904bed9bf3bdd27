"""One owner per loopback address, machine-wide.

The process that serves a cell's service ports (its proxy) holds an abstract Unix socket
named after the address, `\\0cellops-address-127.a.b.c`. The kernel lets one socket hold a
name and frees it when its holder dies, so there is no stale lock to clean up. Anyone may
connect to it and read who holds it (the cell's state folder, the cell and the pid), so
another fleet, or another state folder of the same fleet, is refused the address with a
message that names the holder.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    root: str  # the holder's cell folder ("" when it did not say)
    cell: str
    pid: int

    def describe(self) -> str:
        if not self.root:
            return "a process that does not say who it is"
        folder = Path(self.root).parent.parent
        return f"cell {self.cell} of the state folder {folder} (pid {self.pid})"

    def is_cell(self, root: Path) -> bool:
        return bool(self.root) and Path(self.root) == root.resolve()


class AddressTaken(Exception):
    def __init__(self, address: str, holder: Holder) -> None:
        super().__init__(f"address {address} is held by {holder.describe()}")
        self.address = address
        self.holder = holder


def _name(address: str) -> bytes:
    return b"\0cellops-address-" + address.encode()


def holder(address: str, timeout: float = 2.0) -> Holder | None:
    """Who holds `address`, or None when nobody does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(_name(address))
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        except OSError:  # held, but its holder does not accept
            return Holder("", "", 0)
        data = b""
        with contextlib.suppress(OSError):
            while len(data) < 65536 and (chunk := sock.recv(4096)):
                data += chunk
    try:
        said = json.loads(data)
        return Holder(str(said["root"]), str(said["cell"]), int(said["pid"]))
    except (ValueError, KeyError, TypeError):
        return Holder("", "", 0)


def claim(address: str) -> socket.socket:
    """Hold `address`: a listening socket whose holder answers `holder` (see `identity`).
    Raises AddressTaken when another process holds it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(_name(address))
    except OSError:
        sock.close()
        raise AddressTaken(address, holder(address) or Holder("", "", 0)) from None
    sock.listen(16)
    return sock


def identity(root: Path, pid: int) -> bytes:
    """What the holder of an address answers."""
    resolved = root.resolve()
    return json.dumps({"root": str(resolved), "cell": resolved.name, "pid": pid}).encode()
