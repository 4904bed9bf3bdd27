"""The old pipeline's record for `cellops scorecard --baseline FILE`: a CSV file, one row
per deploy, incident or page (format and example: docs/operations.md, "The parallel run";
examples/scorecard/legacy.csv).

    kind,service,start,end,result,note
    deploy,payments,2026-11-02T10:00:00Z,2026-11-02T10:41:00Z,success,
    deploy,payments,2026-11-04T15:20:00Z,2026-11-04T16:05:00Z,rolled-back,bad config
    incident,payments,2026-11-04T15:31:00Z,2026-11-04T16:20:00Z,,5xx in eu-west
    page,,2026-11-04T15:33:00Z,,,on-call paged

Every problem is reported as `FILE:LINE: FIELD: message`, all of them at once.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from cellops.dora.scorecard import Deploy, Record
from cellops.model.errors import CellopsError

COLUMNS = ("kind", "service", "start", "end", "result", "note")
KINDS = ("deploy", "incident", "page")
RESULTS = {"success": False, "failed": True, "rolled-back": True}


class BaselineError(CellopsError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_baseline(path: Path) -> Record:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(
            [f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}"]
        ) from None
    rows = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS[:5] if c not in (rows.fieldnames or [])]
    if missing:
        expected = ",".join(COLUMNS)
        raise BaselineError(
            [f"{path}:1: header: missing {', '.join(missing)}; expected {expected}"]
        )
    deploys: list[Deploy] = []
    incidents: list[tuple[str, ...]] = []
    problems: list[str] = []
    times: list[float] = []
    pages = 0
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        kind = (row.get("kind") or "").strip()
        start = _time(row.get("start"), f"{where}: start", problems, required=True)
        end = _time(row.get("end"), f"{where}: end", problems, required=kind == "deploy")
        times += [t for t in (start, end) if t is not None]
        if kind == "deploy":
            deploy = _deploy(row, where, (start, end), problems)
            deploys += [deploy] if deploy is not None else []
        elif kind == "incident":
            named = (row.get("service") or "").strip()
            incidents.append((named,) if named else ())
        elif kind == "page":
            pages += 1
        else:
            problems.append(f"{where}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    if problems:
        raise BaselineError(problems)
    span = max(times) - min(times) if times else 0.0
    return Record(deploys, incidents, pages, span, {"pages": pages})


def _deploy(
    row: dict[str, str | None],
    where: str,
    span: tuple[float | None, float | None],
    problems: list[str],
) -> Deploy | None:
    start, end = span
    service = (row.get("service") or "").strip()
    result = (row.get("result") or "").strip()
    found = len(problems)
    if result not in RESULTS:
        problems.append(f"{where}: result: {result!r} is not one of {', '.join(RESULTS)}")
    if not service:
        problems.append(f"{where}: service: a deploy names its service")
    if start is not None and end is not None and end < start:
        problems.append(f"{where}: end: before its start")
    if len(problems) > found or start is None or end is None:
        return None
    return Deploy(service, start, end, RESULTS[result])


def _time(value: str | None, where: str, problems: list[str], *, required: bool) -> float | None:
    text = (value or "").strip()
    if not text:
        if required:
            problems.append(f"{where}: required (ISO-8601, e.g. 2026-11-02T10:00:00Z)")
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{where}: {text!r} is not an ISO-8601 time (2026-11-02T10:00:00Z)")
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
