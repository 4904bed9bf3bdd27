"""The cell page's log tail: the last lines of each replica's output in a local cell,
read from where `cellops logs` reads them (the cell's logs/<service>/*.log), at most
`MAX_BYTES` from the end of each file, so a large log costs no more than a small one."""

from __future__ import annotations

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


def tails(state_dir: Path, cell: str, services: list[str], lines: int = 30) -> list[Tail]:
    """Each service's replica logs in the cell (newest files first), the last `lines`."""
    found: list[Tail] = []
    for service in services:
        folder = cell_paths(state_dir, cell).logs(service)
        try:
            files = sorted(folder.glob("*.log"), key=_mtime, reverse=True)[:MAX_FILES]
        except OSError:
            continue
        found += [Tail(service, path.stem, last_lines(path, lines)) for path in sorted(files)]
    return found


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
