"""When each part of a replica's output was written: the agent's notes of its log's growth.

A workload writes its output straight into its log (O_APPEND, no pipe through the agent,
so the output survives an agent restart), and that output carries no time. At each tick
the agent notes in `<log>.times` how far the log reached and when, as `OFFSET TIME` lines,
at most one per second. A line is dated by the first note that covers its end: it was
written at most about a second before that time. `cellops logs --since` and
`--timestamps` read these notes; a log rotated at its bound takes its notes along.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from pathlib import Path

from cellops.atomic import write_atomic

INTERVAL = 1.0  # seconds between two notes of one log, at most one per interval
MAX_NOTES = 4096  # past this, the older half of the notes is thinned to every other one


def times_path(log: Path) -> Path:
    return log.with_name(log.name + ".times")


def read_notes(log: Path) -> list[tuple[int, float]]:
    """The notes of `log`, in order: (how many bytes it held, by when)."""
    try:
        text = times_path(log).read_text()
    except OSError:
        return []
    notes = []
    for line in text.splitlines():
        offset, _, when = line.partition(" ")
        with contextlib.suppress(ValueError):
            notes.append((int(offset), float(when)))
    return notes


def written_by(notes: list[tuple[int, float]], end: int, fallback: float) -> float:
    """When the bytes before `end` had all been written: the first note that covers
    them, or `fallback` (the log's last change) for bytes written since the last note."""
    at = bisect.bisect_left(notes, (end, float("-inf")))
    return notes[at][1] if at < len(notes) else fallback


class LogClock:
    """The agent's side: note each log's growth, and carry the notes along a rotation."""

    def __init__(self) -> None:
        self._last: dict[Path, tuple[int, float]] = {}

    def keep(self, log: Path, now: float, limit: int) -> None:
        """One tick of a replica's log: bounded at `limit` bytes (rotated to `.1` with its
        notes), and its growth noted."""
        dropped = trim_log(log, limit)
        if dropped is not None:
            self.rotated(log, dropped)
        self.note(log, now)

    def note(self, log: Path, now: float) -> None:
        try:
            size = log.stat().st_size
        except OSError:
            return
        last = self._last.get(log)
        if last is None:  # a new log, or this agent was restarted: its file says
            notes = read_notes(log)
            last = notes[-1] if notes else (0, 0.0)
        if size <= last[0] or now - last[1] < INTERVAL:
            self._last[log] = last
            return
        self._last[log] = (size, now)
        with times_path(log).open("a") as out:
            out.write(f"{size} {now:.3f}\n")
        if times_path(log).stat().st_size > MAX_NOTES * 24:
            _thin(log)

    def rotated(self, log: Path, dropped: int) -> None:
        """`log` was moved to `.1` without its first `dropped` bytes, and emptied."""
        kept = [(o - dropped, t) for o, t in read_notes(log) if o - dropped > 0]
        previous = times_path(log.with_name(log.name + ".1"))
        _write(previous, kept)
        with contextlib.suppress(OSError):
            os.truncate(times_path(log), 0)
        self._last[log] = (0, 0.0)

    def forget(self, log: Path) -> None:
        self._last.pop(log, None)


def _thin(log: Path) -> None:
    notes = read_notes(log)
    half = len(notes) // 2
    _write(times_path(log), notes[:half:2] + notes[half:])


def _write(path: Path, notes: list[tuple[int, float]]) -> None:
    write_atomic(path, "".join(f"{o} {t:.3f}\n" for o, t in notes).encode())


def trim_log(log: Path, limit: int) -> int | None:
    """Keep a replica's log bounded: past `limit` bytes, move it to .1 and start afresh;
    how many bytes from its start did not go to .1 (None: not moved).

    The replica writes with O_APPEND, so truncating under it is safe: its next write lands
    at the new end of the file.
    """
    try:
        if log.stat().st_size <= limit:
            return None
        previous = log.with_name(log.name + ".1")
        data = log.read_bytes()
        previous.write_bytes(data[-limit:])
        os.truncate(log, 0)
    except OSError:
        return None
    return max(0, len(data) - limit)
