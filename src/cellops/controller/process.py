"""One controller per fleet state folder: an exclusive lock, a record of how to reach it,
and the way to run it detached from the terminal."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from cellops.model.errors import StoreError
from cellops.store.database import private_folder


class AlreadyRunning(StoreError):
    def __init__(self, state: Path, pid: object) -> None:
        super().__init__(f"a controller already runs for {state} (pid {pid})")


def lock(state: Path) -> IO[str]:
    """Hold the state folder's controller lock for as long as the returned file is open."""
    try:
        private_folder(state)
        handle = open(state / "controller.lock", "a+")  # noqa: SIM115 - held open on purpose
    except OSError as exc:
        raise _unusable(state, exc) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = read_record(state)
        pid = running.get("pid") if running else "?"
        raise AlreadyRunning(state, pid) from None
    return handle


def write_record(state: Path, **fields: object) -> None:
    (state / "controller.json").write_text(json.dumps({"pid": os.getpid(), **fields}))


def read_record(state: Path) -> dict[str, object] | None:
    try:
        data = json.loads((state / "controller.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def running_pid(state: Path) -> int | None:
    """The pid of the controller holding the lock, or None."""
    path = state / "controller.lock"
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = read_record(state) or {}
            return int(str(record.get("pid", 0))) or None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def stop(state: Path, timeout: float = 15.0) -> int | None:
    pid = running_pid(state)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while running_pid(state) is not None and time.time() < deadline:
        time.sleep(0.05)
    return pid


def spawn_detached(
    args: list[str], state: Path, env: dict[str, str] | None = None, timeout: float = 20.0
) -> int:
    """Start `cellops <args>` in its own session; wait until it holds the lock.

    `env` adds to the environment (secrets go there, never on a command line). A child that
    exits at start is reported with the last line it wrote (its error)."""
    running = running_pid(state)
    if running is not None:
        raise AlreadyRunning(state, running)
    try:
        private_folder(state)
        log = open(state / "controller.log", "ab")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _unusable(state, exc) from None
    with log:
        start = log.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "cellops.cli.main", *args],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid = running_pid(state)
        if pid is not None and (read_record(state) or {}).get("ready"):
            return pid
        if child.poll() is not None:
            said = _last_line(state / "controller.log", start)
            raise StoreError(
                f"the controller exited at start: {said}"
                if said
                else f"the controller exited at start; see {state / 'controller.log'}"
            )
        time.sleep(0.05)
    raise StoreError(
        f"the controller did not start in {timeout:.0f}s; see {state / 'controller.log'}"
    )


def _last_line(log: Path, start: int) -> str:
    """The last line written to `log` after `start`, without the error mark."""
    with open(log, "rb") as handle:
        handle.seek(start)
        lines = handle.read().decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("✗").strip() if lines else ""


def _unusable(state: Path, exc: OSError) -> StoreError:
    return StoreError(
        f"cannot use the state folder {state} ({exc.strerror or exc}): make it writable by"
        " this user, or give another --state-dir"
    )
