"""One controller per fleet state folder: an exclusive lock, a record of how to reach it,
and the way to run it detached from the terminal.

Who runs is read from the kernel, never guessed from a file: the lock's holder is in
/proc/locks (reading it never takes the lock, so a probe cannot make a starting controller
fail to lock), and it must be the process the lock file names, with the same process
start time (a pid alone may have been reused). `controller.json` (how to reach it) is
written once it is ready; one a killed controller left behind counts for nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cellops.model.errors import StoreError
from cellops.procfs import start_time
from cellops.store.database import private_folder

LOCK, RECORD = "controller.lock", "controller.json"
# Who holds the lock: a controller, or `cellops down` tearing the cells down (so that no
# controller starts, and restarts cells or their rules, in the middle of it).
CONTROLLER, DOWN = "controller", "down"


class AlreadyRunning(StoreError):
    def __init__(self, state: Path, pid: object, role: str = CONTROLLER) -> None:
        super().__init__(
            f"`cellops down` (pid {pid}) is stopping the fleet of {state}: start it again"
            " once that is done"
            if role == DOWN
            else f"a controller already runs for {state} (pid {pid})"
        )


class NotItsController(StoreError):
    def __init__(self, state: Path, pid: int) -> None:
        super().__init__(
            f"the controller lock of {state} is held by pid {pid}, which is not recorded as"
            f" its controller in {state / LOCK}: not signalling it (stop it yourself if it"
            " is one)"
        )


def lock(state: Path, role: str = CONTROLLER) -> IO[str]:
    """Hold the state folder's controller lock for as long as the returned file is open;
    the lock file names its holder (pid, start time and role) at once."""
    try:
        private_folder(state)
        handle = open(state / LOCK, "a+")  # noqa: SIM115 - held open on purpose
    except OSError as exc:
        raise _unusable(state, exc) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        pid = holder(state)
        raise AlreadyRunning(state, pid or "?", _role(state, pid)) from None
    handle.seek(0)
    handle.truncate()
    pid = os.getpid()
    handle.write(json.dumps({"pid": pid, "started": start_time(pid), "role": role}))
    handle.flush()
    return handle


def write_record(state: Path, **fields: object) -> None:
    """This process as the folder's controller (pid and start time), written atomically."""
    pid = os.getpid()
    data = json.dumps({"pid": pid, "started": start_time(pid), **fields})
    staging = state / f".{RECORD}.{pid}"
    with os.fdopen(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(data)
    staging.replace(state / RECORD)


def read_record(state: Path) -> dict[str, object] | None:
    try:
        data = json.loads((state / RECORD).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def holder(state: Path) -> int | None:
    """The pid holding the folder's controller lock, from /proc/locks, or None."""
    try:
        status = (state / LOCK).stat()
        table = Path("/proc/locks").read_text()
    except FileNotFoundError:
        return None
    key = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():
        # "3: FLOCK  ADVISORY  WRITE 4242 fe:00:2147903 0 EOF"; waiters show "3: -> FLOCK"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == key:
            return int(fields[4]) or None
    return None


def running_pid(state: Path) -> int | None:
    """The pid of the controller holding the lock, or None."""
    return holder(state)


def _lock_record(state: Path) -> dict[str, object]:
    try:
        record = json.loads((state / LOCK).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def recorded(state: Path, pid: int) -> bool:
    """`pid` is the holder the lock file names: same pid, same start time."""
    record = _lock_record(state)
    started = start_time(pid)
    return started is not None and record.get("pid") == pid and record.get("started") == started


def _role(state: Path, pid: int | None) -> str:
    """What the recorded holder `pid` is (a controller unless it says otherwise)."""
    if pid is None or not recorded(state, pid):
        return CONTROLLER
    return str(_lock_record(state).get("role", CONTROLLER))


def stop(state: Path, timeout: float = 15.0) -> int | None:
    """SIGTERM the folder's controller and wait for it to let go of the lock; its pid.

    Only a process that holds this folder's lock and is recorded as its controller is
    signalled, through a pidfd opened before checking, so a pid reused in between is never
    hit. A lock holder that never records itself is refused (NotItsController)."""
    deadline = time.monotonic() + 3.0  # a controller names itself right after locking
    while (pid := holder(state)) is not None and not recorded(state, pid):
        if time.monotonic() > deadline:
            raise NotItsController(state, pid)
        time.sleep(0.05)
    if pid is None:
        return None
    if _role(state, pid) == DOWN:
        raise StoreError(f"`cellops down` (pid {pid}) is already stopping the fleet of {state}")
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        if holder(state) != pid or not recorded(state, pid):
            return None  # it exited (and its pid may be another process's now)
        signal.pidfd_send_signal(handle, signal.SIGTERM)
    finally:
        os.close(handle)
    deadline = time.monotonic() + timeout
    while holder(state) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


@contextlib.contextmanager
def stopped(state: Path, timeout: float = 15.0) -> Iterator[int | None]:
    """Stop the folder's controller and hold its lock (as `down`) until the block ends;
    the stopped controller's pid. A controller that starts meanwhile (an `up` that had not
    yet locked) is stopped too, and none can start while the block tears cells down."""
    if not state.is_dir():  # nothing ever ran here (and a typo makes no folder)
        yield None
        return
    deadline, stopped_pid = time.monotonic() + timeout, None
    while True:
        stopped_pid = stop(state, timeout) or stopped_pid
        try:
            handle = lock(state, role=DOWN)
            break
        except AlreadyRunning:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"the controller of {state} (pid {holder(state)}) did not stop"
                    f" within {timeout:.0f}s"
                ) from None
            time.sleep(0.05)
    try:
        yield stopped_pid
    finally:
        handle.close()


def spawn_detached(
    args: list[str], state: Path, secret: str | None = None, timeout: float = 20.0
) -> int:
    """Start `cellops <args>` in its own session; wait until it holds the lock, has
    recorded itself and is ready; its pid (never a previous controller's).

    `secret` (the webhook's) goes through a pipe on the child's stdin, never through its
    command line or environment. A child that exits at start is reported with the last
    line it wrote (its error)."""
    running = holder(state)
    if running is not None:
        raise AlreadyRunning(state, running, _role(state, running))
    try:
        private_folder(state)
        # the controller's alone, whatever the folder's rights (`--state-dir .`)
        log = os.fdopen(
            os.open(state / "controller.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab"
        )
    except OSError as exc:
        raise _unusable(state, exc) from None
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_WEBHOOK_SECRET"}
    with log:
        start = log.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "cellops.cli.main", *args]
            + (["--webhook-secret-file", "-"] if secret else []),
            env=env,
            stdin=subprocess.PIPE if secret else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    if child.stdin is not None:
        with contextlib.suppress(BrokenPipeError), child.stdin:
            child.stdin.write(str(secret).encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_record(state) or {}
        if record.get("ready") and record.get("pid") == child.pid:
            if holder(state) == child.pid and recorded(state, child.pid):
                return child.pid
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
    """The last line written to `log` after `start`, without the error mark: the
    `message` of a JSON line (the log is JSON lines), or the line as it is."""
    with open(log, "rb") as handle:
        handle.seek(start)
        lines = handle.read().decode(errors="replace").strip().splitlines()
    if not lines:
        return ""
    try:
        said = json.loads(lines[-1])
    except json.JSONDecodeError:
        said = None
    text = str(said.get("message") or said.get("event")) if isinstance(said, dict) else lines[-1]
    return text.removeprefix("✗").strip()


def _unusable(state: Path, exc: OSError) -> StoreError:
    return StoreError(
        f"cannot use the state folder {state} ({exc.strerror or exc}): make it writable by"
        " this user, or give another --state-dir"
    )
