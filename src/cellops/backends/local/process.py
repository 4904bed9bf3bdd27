"""OS processes of a cell: start in their own session, recognise them again, stop them.

A pid alone can be reused by the kernel; a pid plus its start time (from /proc) cannot,
so a restarted agent re-adopts exactly the replicas its predecessor started.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellops import procfs
from cellops.backends.local.users import CellUser

# what a replica gets of its agent's environment (an agent's own is clean: see backend.py)
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Launch:
    """How a process of a cell starts (a replica, or an exec probe beside it): in which
    folder, with which environment, as which user (None: as the agent's)."""

    cwd: Path
    env: dict[str, str]
    user: CellUser | None = None
    prefix: tuple[str, ...] = ()  # an exec probe's command runs after it (podman exec NAME)


def replica_env(
    spec: dict[str, Any], host: str, replica: str, ports: dict[str, int], user: CellUser | None
) -> dict[str, str]:
    """A replica's environment: a few of the agent's variables (PATH kept to folders the
    cell's user can reach), the service's env, and where it serves."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    if user is not None:
        env.pop("PYTHONPATH", None)
        env["PATH"] = reachable_path(env.get("PATH", SAFE_PATH))
        env["HOME"] = user.home
    env.update(spec.get("env", {}))
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env | serving_env(host, replica, ports)


def serving_env(host: str, replica: str, ports: dict[str, int]) -> dict[str, str]:
    """Where a replica (process or container) serves: HOST, PORT (its first port) and
    PORT_<NAME> for each named port, and which replica it is."""
    env = {"HOST": host, "PORT": str(next(iter(ports.values()), 0)), "CELLOPS_REPLICA": replica}
    env.update({f"PORT_{n.upper().replace('-', '_')}": str(p) for n, p in ports.items()})
    return env


def start(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, user: CellUser | None = None
) -> tuple[int, int]:
    """Start `command` in a new session writing to `log`, as `user` (no supplementary
    groups, umask 077) if given; returns (pid, start time)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        options = popen_options(Launch(cwd, env, user), command[0])
        process = subprocess.Popen(command, stdout=out, **options)
    return process.pid, start_time(process.pid) or 0


def popen_options(launch: Launch, command: str | None = None) -> dict[str, Any]:
    """Popen's arguments for a cell's process: its own session, nothing inherited but
    `launch`; as the cell's user, after checking it can reach `command`'s program."""
    options: dict[str, Any] = {
        "cwd": launch.cwd,
        "env": launch.env,
        "stdin": subprocess.DEVNULL,
        "stderr": subprocess.STDOUT,
        "start_new_session": True,
        "close_fds": True,
    }
    user = launch.user
    if user is not None:
        if command is not None:
            check_reachable(command, launch, user)
        # the folder is entered as root, before the switch: the user needs no path to it
        options |= {"user": user.uid, "group": user.gid, "extra_groups": [], "umask": 0o077}
    return options


def check_reachable(program: str, launch: Launch, user: CellUser) -> None:
    """Refuse, saying why, a program the cell's user could not run: a folder on its way
    is private (root's home, where pyenv and many virtualenvs live, is)."""
    if "/" in program:
        found: str | None = str(launch.cwd / program)
    else:
        found = shutil.which(program, path=launch.env.get("PATH", SAFE_PATH))
    if found is None:
        return  # Popen says it is not found
    for candidate in (Path(found), Path(os.path.realpath(found))):
        closed = private_part(candidate)
        if closed is not None:
            raise PermissionError(
                errno.EACCES,
                f"{user.name} (the cell's user) cannot run it: {closed} is private to its"
                " owner; install it where every user can read and run it",
                found,
            )


def private_part(path: Path) -> Path | None:
    """The first folder on the way to `path` (or `path`) that other users cannot pass."""
    for part in [*reversed(path.parents), path]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return None
        if not mode & stat.S_IXOTH:
            return part
    return None


def agent_env(state_root: Path) -> dict[str, str]:
    """A cell agent's environment: only what it needs, never the controller's secrets."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    return {**env, "CELLOPS_STATE_DIR": str(state_root)}


@functools.lru_cache(maxsize=64)
def reachable_path(path: str) -> str:
    """The folders of a PATH that other users can pass through (or a system default)."""
    kept = [f for f in path.split(os.pathsep) if f and private_part(Path(f)) is None]
    return os.pathsep.join(kept) or SAFE_PATH


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None: gone); with the pid, its
    identity."""
    return procfs.start_time(pid)


def age(started: int) -> float:
    """Seconds since a process that started at `started` (clock ticks since boot)."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))


def alive(pid: int, started: int) -> bool:
    return pid > 0 and start_time(pid) == started


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the replica's whole process group (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def kill_group(pid: int, started: int) -> None:
    """SIGKILL what is left of a replica's process group, its leader alive or not: a
    leader that exited leaves the children it forked behind, in its group. Not when its pid
    now names another process: the group is then not the replica's."""
    if start_time(pid) in (None, started):
        signal_group(pid, signal.SIGKILL)


def reap(pids: list[int]) -> None:
    """Collect these exited children so they do not linger as zombies.

    Only our replicas: reaping any child (waitpid(-1)) would steal the exit status of an
    exec probe's process from the thread waiting for it.
    """
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # adopted replicas are not our children: ignored
