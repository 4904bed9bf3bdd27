"""The controller's events as log lines (structlog): JSON when the output is not a
terminal, so a detached controller's log can be shipped and parsed as it is."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

from cellops.store.base import Store


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
            self._log.info(event.kind, message=event.message, **fields)
