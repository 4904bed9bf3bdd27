"""`cellops logs CELL SERVICE [-f] [--since 10m]`: each replica's output in a local cell.

Each replica is headed by a line that says whether it runs (pid, ready, restarts) or is
gone, and when it last wrote. Lines are written as the workload wrote them, never
re-wrapped, so a pipe to grep gets whole lines. A workload's output carries no time of
its own: the cell's agent notes how far each log reached and when, once a second
(`backends/local/logtimes.py`), so each line is dated within about a second of its
writing; `--since` keeps the lines written since then and `--timestamps` prints the date.
Lines that arrive while following (-f) are dated when read.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from cellops.backends.local.logtimes import read_notes, written_by
from cellops.cli.common import state_dir
from cellops.cli.events import SinceOption, since_option
from cellops.cli.output import Exit, errors
from cellops.cli.params import StateOption
from cellops.cli.table import age

STOPS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Replica:
    id: str
    log: Path
    pod: dict[str, Any] | None  # the agent's record of it, None once it no longer runs it
    offset: int = 0

    def header(self) -> str:
        written = self.log.stat().st_mtime if self.log.exists() else None
        last = f"last output {age(written)} ago" if written else "no output yet"
        if self.pod is None:
            return f"==> {self.id}: gone (no longer run by the agent); {last} <=="
        state = str(self.pod.get("state", "running"))
        ready = "ready" if self.pod.get("ready") else "not ready"
        restarts = self.pod.get("restarts", 0)
        pid = f" pid {self.pod['pid']}," if self.pod.get("pid") else ""
        return f"==> {self.id}: {state},{pid} {ready}, {restarts} restart(s); {last} <=="


def logs(
    cell: str = typer.Argument(..., help="The cell."),
    service: str = typer.Argument(..., help="The service."),
    repo: str = typer.Option(".", "--repo", help="The fleet repo (path or URL)."),
    state: Path | None = StateOption,
    lines: int = typer.Option(50, "--lines", "-n", help="Lines per replica to start with."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output."),
    since: str | None = SinceOption,
    timestamps: bool = typer.Option(
        False,
        "--timestamps",
        help="Each line prefixed with when it was written (within about a second).",
    ),
) -> None:
    """Each replica's output in a local cell: running replicas and gone ones, marked."""
    from cellops.backends.local.layout import cell_paths

    folder = state_dir(repo, state)
    paths = cell_paths(folder, cell)
    start = since_option(since)
    replicas = _replicas(paths.logs(service), paths.status, service, start)
    if not replicas and not follow:
        errors.print(_nothing(folder, cell, service, since), markup=False)
        raise typer.Exit(Exit.USAGE)
    stop = threading.Event()  # set by SIGINT/SIGTERM from the first line printed (`_follow`)
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOPS} if follow else {}
    try:
        for replica in replicas.values():
            _print_tail(replica, lines, start, timestamps)
        if follow:
            _follow(replicas, paths.logs(service), paths.status, service, timestamps, stop)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _replicas(folder: Path, status: Path, service: str, since: float | None) -> dict[str, Replica]:
    pods = {p["id"]: p for p in _pods(status, service)}
    found: dict[str, Replica] = {}
    for log in sorted(folder.glob("*.log")):
        if since is not None and log.stat().st_mtime < since:
            continue  # wrote nothing since then
        found[log.stem] = Replica(log.stem, log, pods.get(log.stem))
    return found


def _pods(status: Path, service: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(status.read_text())
        return list(document["services"][service]["pods"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _print_tail(replica: Replica, lines: int, since: float | None, stamp: bool) -> None:
    sys.stdout.write(replica.header() + "\n")
    try:
        data = replica.log.read_bytes()
        changed = replica.log.stat().st_mtime
    except OSError:
        data, changed = b"", time.time()
    replica.offset = len(data)
    dated = _dated(data, read_notes(replica.log), changed)
    if since is not None:
        dated = [(when, line) for when, line in dated if when >= since]
    tail = dated[-lines:] if lines > 0 else []
    sys.stdout.write("".join(f"{_iso(when) if stamp else ''}{line}\n" for when, line in tail))
    sys.stdout.flush()


def _dated(data: bytes, notes: list[tuple[int, float]], changed: float) -> list[tuple[float, str]]:
    """Each line of a log with when it had been written by (`logtimes.written_by`)."""
    found, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end].decode(errors="replace")
        found.append((written_by(notes, min(end + 1, len(data)), changed), line))
        start = end + 1
    return found


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(when))


def _follow(
    replicas: dict[str, Replica],
    folder: Path,
    status: Path,
    service: str,
    stamp: bool,
    stop: threading.Event,
) -> None:
    """New output of every replica, each line prefixed with its replica; replicas that
    start meanwhile are followed too. Ends when `stop` is set: by the SIGINT/SIGTERM handler
    `logs` installs before its first line. Python installs none for SIGINT in a process
    started with SIGINT ignored (any `cmd &` of a non-interactive shell): such a follower,
    seen in a suite run, went on after its SIGINT for hours."""
    partial: dict[str, bytes] = {}
    while not stop.is_set():
        for name, fresh in _replicas(folder, status, service, None).items():
            if name not in replicas:
                replicas[name] = fresh
                sys.stdout.write(fresh.header() + "\n")
        for replica in replicas.values():
            _read_new(replica, partial, stamp)
        sys.stdout.flush()
        stop.wait(0.25)


def _read_new(replica: Replica, partial: dict[str, bytes], stamp: bool) -> None:
    try:
        with replica.log.open("rb") as handle:
            size = handle.seek(0, 2)
            if size < replica.offset:  # the file was cut short (its bound): from its start
                replica.offset = 0
            handle.seek(replica.offset)
            data = partial.pop(replica.id, b"") + handle.read()
            replica.offset = handle.tell()
    except FileNotFoundError:
        return
    *complete, rest = data.split(b"\n")
    if rest:
        partial[replica.id] = rest  # an unfinished line waits for its end
    now = _iso(time.time()) if stamp else ""
    for line in complete:
        sys.stdout.write(f"{now}[{replica.id}] {line.decode(errors='replace')}\n")


def _nothing(folder: Path, cell: str, service: str, since: str | None) -> str:
    kubectl = _kubernetes_logs(folder, cell, service)
    if kubectl is not None:
        return f"✗ {cell} is a Kubernetes cell: its pods' logs are the cluster's: {kubectl}"
    if since is not None:
        return f"✗ no output from {service} in cell {cell} since {since} (under {folder})"
    return f"✗ no logs for {service} in cell {cell} (under {folder})"


def _kubernetes_logs(folder: Path, cell: str, service: str) -> str | None:
    """The kubectl command that shows a Kubernetes cell's logs of `service`, or None for a
    cell the controller does not hold in a cluster."""
    if not (folder / "cellops.db").exists():
        return None
    from cellops.store.sqlite import SqliteStore

    store = SqliteStore(folder / "cellops.db")
    try:
        if not store.holds_objects(cell):
            return None
        applied = store.cell_states(cell)[0]
    finally:
        store.close()
    backend = (json.loads(applied) if applied else {}).get("spec", {}).get("backend", {})
    namespace = backend.get("namespace") or f"cell-{cell}"
    context = f" --context {backend['context']}" if backend.get("context") else ""
    return (
        f"kubectl logs{context} -n {namespace} -l app.kubernetes.io/name={service}"
        " --prefix --timestamps -f"
    )
