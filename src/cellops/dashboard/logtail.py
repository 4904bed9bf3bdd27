"""The cell page's log tail: the last lines of each replica's output in a local cell,
read from where `cellops logs` reads them (the cell's logs/<service>/*.log), at most
`MAX_BYTES` from the end of each file, so a large log costs no more than a small one.
Replicas the agent runs (its status file) come first, then gone ones, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cellops.backends.local.layout import cell_paths

MAX_BYTES = 64 * 1024
MAX_FILES = 8  # replicas shown per service (the newest)


@dataclass(frozen=True)
class Tail:
    service: str
    replica: str  # the log file's name, e.g. payments-0
    lines: list[str]
    running: bool  # the agent runs it now (else it is gone: an older or crashed one)


def tails(state_dir: Path, cell: str, services: list[str], lines: int = 30) -> list[Tail]:
    """Each service's replica logs in the cell (at most MAX_FILES), the last `lines`."""
    paths = cell_paths(state_dir, cell)
    running = _running(paths.status)
    found: list[Tail] = []
    for service in services:
        try:
            files = list(paths.logs(service).glob("*.log"))
        except OSError:
            continue
        files.sort(key=lambda f: (f.stem in running, _mtime(f)), reverse=True)
        found += [
            Tail(service, f.stem, last_lines(f, lines), f.stem in running)
            for f in files[:MAX_FILES]
        ]
    return found


def _running(status: Path) -> set[str]:
    """The replicas the cell's agent says it runs (its status file), by id."""
    try:
        services = json.loads(status.read_text()).get("services", {})
        return {str(p["id"]) for s in services.values() for p in s.get("pods", [])}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return set()


def last_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of `path` (from its last MAX_BYTES); [] if unreadable."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - MAX_BYTES))
            data = handle.read(MAX_BYTES)
    except OSError:
        return []
    text = data.decode(errors="replace").splitlines()
    if size > MAX_BYTES and text:
        text = text[1:]  # the first line was cut
    return text[-count:]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
