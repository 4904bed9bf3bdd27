"""The system users local cells run as (as root): made, removed, and collected when the
state folder that made them is gone.

Each is a system account with no home, no login shell and a group of its own; its comment
says which cell of which state folder it serves (`cellops <cell> <state folder>`), which
is how users left behind (a state folder removed without `cellops down`) are found: there
are under a thousand system uids.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cellops.model.errors import StartupError

SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
PREFIX = "cellops-"


class IsolationError(StartupError):
    pass


@dataclass(frozen=True)
class CellUser:
    name: str
    uid: int
    gid: int
    home: str


def ensure(name: str, comment: str) -> CellUser:
    """The system user `name`, created if new."""
    deadline = time.monotonic() + 30
    while True:
        try:
            entry = pwd.getpwnam(name)
            return CellUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
        except KeyError:
            pass
        command = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent"]
        command += ["--shell", "/usr/sbin/nologin", "--user-group"]
        # a comment that cannot be kept as it is names no folder: never collected
        said = comment if _gecos(comment) == comment else " ".join(comment.split(" ")[:2])
        done = _sbin([*command, "--comment", _gecos(said), name])
        # 9: made meanwhile by another controller; 1 or 10: /etc/passwd locked, try again
        if done.returncode not in (0, 9, 1, 10) or time.monotonic() > deadline:
            raise IsolationError(f"cannot create the user {name}: {done.stderr.strip()}")
        if done.returncode in (1, 10):
            time.sleep(0.2)


def remove(name: str) -> None:
    """Remove a cell's user (and its group); a process of it still exiting is waited for."""
    deadline = time.monotonic() + 10
    while True:
        done = _sbin(["userdel", name])
        # 6: already gone; 8: a process of it still exits; 1 or 10: files locked
        if done.returncode in (0, 6) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def collect_orphans() -> list[str]:
    """Remove the cells' users whose state folder is gone and that run nothing."""
    busy = set()
    for process in os.scandir("/proc"):
        if process.name.isdigit():
            try:
                busy.add(process.stat().st_uid)
            except OSError:
                continue
    gone = []
    for entry in pwd.getpwall():
        words = entry.pw_gecos.split(" ", 2)
        if not entry.pw_name.startswith(PREFIX) or len(words) < 3 or words[0] != "cellops":
            continue
        if entry.pw_uid not in busy and not Path(words[2]).exists():
            remove(entry.pw_name)
            gone.append(entry.pw_name)
    return gone


def _gecos(comment: str) -> str:
    return "".join(c if c.isprintable() and c not in ":," else "_" for c in comment)


def _sbin(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{SBIN}:/usr/bin:/bin", "LANG": "C"}
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)
