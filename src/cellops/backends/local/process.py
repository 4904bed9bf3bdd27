"""OS processes of a cell: start in their own session, recognise them again, stop them.

A pid alone can be reused by the kernel; a pid plus its start time (from /proc) cannot,
so a restarted agent re-adopts exactly the replicas its predecessor started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, int]:
    """Start `command` in a new session writing to `log`; returns (pid, start time)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid, start_time(process.pid) or 0


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def alive(pid: int, started: int) -> bool:
    return pid > 0 and start_time(pid) == started


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the replica's whole process group (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def reap(pids: list[int]) -> None:
    """Collect these exited children so they do not linger as zombies.

    Only our replicas: reaping any child (waitpid(-1)) would steal the exit status of an
    exec probe's process from the thread waiting for it.
    """
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # adopted replicas are not our children: ignored


def trim_log(log: Path, limit: int) -> None:
    """Keep a replica's log bounded: past `limit` bytes, move it to .1 and start afresh.

    The replica writes with O_APPEND, so truncating under it is safe: its next write lands
    at the new end of the file.
    """
    try:
        if log.stat().st_size <= limit:
            return
        previous = log.with_suffix(log.suffix + ".1")
        previous.write_bytes(log.read_bytes()[-limit:])
        os.truncate(log, 0)
    except OSError:
        return
