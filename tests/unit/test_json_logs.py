"""controller.log is JSON lines only: a process that installs `JsonOutput` writes every
line as one JSON event (prints, bytes written straight to fd 2, tracebacks as one event
with an `exception` field), and `up --detach` still reads a start error from it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from cellops.controller.process import _last_line

CHILD = textwrap.dedent(
    """
    import os, sys, traceback
    from cellops.observe.logs import JsonOutput

    log = JsonOutput().install()
    print("plain print")
    os.write(2, b"bytes on fd 2, as a library in Go would write them\\n")
    log.info("rollout-started", revision="abc", rollout=3)
    try:
        raise ValueError("boom")
    except ValueError:
        traceback.print_exc()
    try:
        {}["missing"]
    except KeyError:
        log.error("pass-failed", exc_info=True)
    print("\\u2717 the controller's store failed: last words", file=sys.stderr)
    """
)


def test_every_line_is_json_and_a_traceback_is_one_event(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing left on the real stderr: all of it went to the log
    events = [json.loads(line) for line in done.stdout.splitlines()]  # each line parses
    assert all(e["timestamp"].endswith("Z") and "level" in e for e in events)
    by_message = {e.get("message"): e for e in events}
    assert "plain print" in by_message
    assert "bytes on fd 2, as a library in Go would write them" in by_message
    traceback = by_message["ValueError: boom"]
    assert traceback["level"] == "error" and traceback["exception"].startswith("Traceback")
    started = next(e for e in events if e["event"] == "rollout-started")
    assert started["rollout"] == 3
    failed = next(e for e in events if e["event"] == "pass-failed")
    assert "KeyError: 'missing'" in failed["exception"]
    log = tmp_path / "controller.log"
    log.write_text(done.stdout)
    assert _last_line(log, 0) == "the controller's store failed: last words"


def test_last_line_of_a_plain_log_is_the_line(tmp_path: Path) -> None:
    log = tmp_path / "controller.log"
    log.write_text("something\n✗ cannot use the state folder /x\n")
    assert _last_line(log, 0) == "cannot use the state folder /x"
    assert _last_line(log, log.stat().st_size) == ""
