"""The controller's log as JSON lines only: one event per line, tracebacks inside.

`JsonOutput.install()` takes over the process's standard output and error at the file
descriptor level: everything written there (a `print`, a traceback, uvicorn's log lines,
a library writing to fd 2) arrives on a pipe and is written to the original output as
one JSON event per line (`"event": "output"`, `"message"`); a traceback is
one event, with the traceback in its `exception` field. The controller's own events go
through `logger`, a structlog logger writing JSON to the same output under the same
lock, so lines never interleave.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import Any, TextIO

import structlog

TRACEBACK = "Traceback (most recent call last):"
_ACTIVE: list[Any] = []  # the installed output's logger, if any


def active() -> Any:
    """The logger of the installed JSON output, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def json_logger(out: TextIO) -> Any:
    """A structlog logger writing one JSON object per line to `out`: ISO-8601 UTC time,
    level, event, fields; `exc_info` becomes an `exception` field with the traceback."""
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


class JsonOutput:
    def __init__(self) -> None:
        self.logger: Any = None
        self._thread: threading.Thread | None = None
        self._saved: int | None = None

    def install(self) -> Any:
        """Route fds 1 and 2 through the JSON writer; the logger for events."""
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = os.dup(1)
        out = os.fdopen(os.dup(self._saved), "w", buffering=1, encoding="utf-8")
        self.logger = json_logger(out)
        read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        self._thread = threading.Thread(
            target=self._pump, args=(read,), name="json-output", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)
        _ACTIVE.append(self.logger)
        return self.logger

    def close(self) -> None:
        """Flush what was written, wait until it is logged, give fds 1 and 2 back."""
        if self._saved is None:
            return
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        saved, self._saved = self._saved, None
        os.dup2(saved, 1)  # the pipe's last writers close: the pump sees its end
        os.dup2(saved, 2)
        os.close(saved)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _pump(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as lines:
            pending: list[str] = []
            for raw in lines:
                line = raw.rstrip("\n")
                if pending:
                    pending.append(line)
                    if line and not line[0].isspace():  # "ValueError: ...": its end
                        self._traceback(pending)
                        pending = []
                elif line.startswith(TRACEBACK):
                    pending = [line]
                elif line.strip():
                    self.logger.info("output", message=line.strip())
            if pending:
                self._traceback(pending)

    def _traceback(self, lines: list[str]) -> None:
        self.logger.error("output", message=lines[-1], exception="\n".join(lines))
