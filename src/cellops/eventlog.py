"""The controller's events as log lines (structlog): JSON when the output is not a
terminal, so a detached controller's log can be shipped and parsed as it is."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

from cellops.store.base import Store

# what needs a look (warning) or a person (error); every other kind is info
WARNINGS = ("cell-failed", "rollout-halted", "revision-rejected", "source-error", "apply-retry")
WARNINGS_TOO = ("drift", "agent-restarted", "retry-refused", "routing-table-error")
ERRORS = ("rollback-failed", "rollback-impossible", "controller-error", "cell-error")
LEVELS = dict.fromkeys(WARNINGS + WARNINGS_TOO, "warning") | dict.fromkeys(ERRORS, "error")


class EventLog:
    """Writes each new event of the store once, in order."""

    def __init__(self, store: Store, stream: TextIO | None = None, logger: Any = None) -> None:
        """`logger`: a structlog logger to write to (`observe.logs.JsonOutput`'s);
        else one on `stream`, for people on a terminal, JSON otherwise."""
        stream = stream or sys.stderr
        renderer: structlog.types.Processor = (
            structlog.dev.ConsoleRenderer(colors=False)
            if stream.isatty()
            else structlog.processors.JSONRenderer()
        )
        self._log = logger or structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
        )
        self._store = store
        latest = store.events(limit=1)
        self._seen = latest[-1].id if latest else 0

    def flush(self) -> None:
        for event in self._store.events(after=self._seen, limit=1000):
            self._seen = event.id
            fields = {
                k: v
                for k, v in (
                    ("cell", event.cell),
                    ("service", event.service),
                    ("revision", event.revision),
                    ("rollout", event.rollout),
                )
                if v is not None
            }
            level = LEVELS.get(event.kind, "info")
            getattr(self._log, level)(event.kind, message=event.message, **fields)
