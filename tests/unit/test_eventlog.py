"""The controller's events become JSON log lines, each once, in order."""

from __future__ import annotations

import io
import json
from pathlib import Path

from cellops.eventlog import EventLog
from cellops.observe.logs import json_logger
from cellops.store.sqlite import SqliteStore


def test_new_events_are_written_once_as_json(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    store.add_event(1.0, "old", "before the log started")
    out = io.StringIO()
    log = EventLog(store, out)
    store.add_event(2.0, "applied", "eu-1 given abc", cell="eu-1", revision="abc", rollout=1)
    store.add_event(3.0, "healthy", "eu-1 healthy", cell="eu-1")
    log.flush()
    log.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["event"], line.get("cell")) for line in lines] == [
        ("applied", "eu-1"),
        ("healthy", "eu-1"),
    ]
    assert lines[0]["revision"] == "abc" and lines[0]["rollout"] == 1
    assert "timestamp" in lines[0]


def test_levels_say_what_needs_a_look(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    out = io.StringIO()
    log = EventLog(store, out, logger=json_logger(out))  # as in controller.log
    store.add_event(1.0, "healthy", "eu-1 healthy", cell="eu-1")
    store.add_event(2.0, "cell-failed", "eu-1: CrashLoopBackOff", cell="eu-1")
    store.add_event(3.0, "rollback-failed", "eu-1: refused", cell="eu-1")
    log.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("healthy", "info"),
        ("cell-failed", "warning"),
        ("rollback-failed", "error"),
    ]
