"""The agent's notes of when each part of a replica's log was written: at most one a
second, only when the log grew, kept across an agent restart, carried along a rotation,
bounded; and a line is dated by the first note that covers its end."""

from __future__ import annotations

from pathlib import Path

from cellops.backends.local.logtimes import (
    MAX_NOTES,
    LogClock,
    read_notes,
    times_path,
    trim_log,
    written_by,
)


def write(log: Path, text: str) -> None:
    with log.open("a") as out:
        out.write(text)


def test_growth_is_noted_at_most_once_a_second(tmp_path: Path) -> None:
    log, clock = tmp_path / "web-a.log", LogClock()
    write(log, "one\n")
    clock.note(log, 100.0)
    write(log, "two\n")
    clock.note(log, 100.4)  # within the second: folded into the next note
    clock.note(log, 101.2)
    clock.note(log, 103.0)  # no growth: no note
    assert read_notes(log) == [(4, 100.0), (8, 101.2)]
    assert written_by(read_notes(log), 4, 999.0) == 100.0
    assert written_by(read_notes(log), 8, 999.0) == 101.2
    write(log, "three\n")
    assert written_by(read_notes(log), 14, 999.0) == 999.0  # not noted yet: the fallback


def test_a_restarted_agent_goes_on_from_the_file(tmp_path: Path) -> None:
    log = tmp_path / "web-a.log"
    write(log, "one\n")
    LogClock().note(log, 100.0)
    again = LogClock()
    again.note(log, 100.5)  # the same size: nothing new
    write(log, "two\n")
    again.note(log, 102.0)
    assert read_notes(log) == [(4, 100.0), (8, 102.0)]


def test_a_rotated_log_takes_its_notes_along(tmp_path: Path) -> None:
    log, clock = tmp_path / "web-a.log", LogClock()
    for second in range(10):
        write(log, f"line {second}\n")  # 7 bytes each
        clock.note(log, 100.0 + second)
    dropped = trim_log(log, 21)  # the last three lines go to .1
    assert dropped == 49
    clock.rotated(log, dropped)
    previous = log.with_name(log.name + ".1")
    assert previous.read_text() == "line 7\nline 8\nline 9\n"
    assert read_notes(previous) == [(7, 107.0), (14, 108.0), (21, 109.0)]
    assert read_notes(log) == []
    write(log, "after\n")
    clock.note(log, 110.0)
    assert read_notes(log) == [(6, 110.0)]


def test_the_notes_stay_bounded_and_still_date_no_line_too_early(tmp_path: Path) -> None:
    log, clock = tmp_path / "web-a.log", LogClock()
    for second in range(MAX_NOTES * 3):
        write(log, "x\n")
        clock.note(log, float(second))
    notes = read_notes(log)
    assert len(notes) < MAX_NOTES * 1.6
    assert times_path(log).stat().st_size <= MAX_NOTES * 24 + 64
    for line in range(0, MAX_NOTES * 3, 97):  # each line written at `line` seconds
        assert written_by(notes, 2 * (line + 1), 1e9) >= line
