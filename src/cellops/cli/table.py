"""kubectl-shaped text: upper-case headers, columns padded with spaces, one row a line,
never wrapped or cut (a pipe to grep or awk gets whole lines), ages as `12s`, `5m`, `3h`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import datetime


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as text: a header line and one line per row; None prints as `-`, an
    empty string as nothing (a row that continues the one above)."""
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [_line([h.upper() for h in headers], widths)]
    lines += [_line(row, widths) for row in cells]
    return "\n".join(lines) + "\n"


def echo(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    sys.stdout.write(render(headers, rows))


def fields(pairs: Sequence[tuple[str, object]], indent: str = "") -> str:
    """`Name:  value` lines, values aligned, as `kubectl describe` prints them."""
    width = max((len(k) for k, _ in pairs), default=0) + 2
    return "".join(f"{indent}{(k + ':').ljust(width)}{_text(v)}\n" for k, v in pairs)


def age(at: str | float | None, now: float | None = None) -> str:
    """How long ago `at` (ISO-8601 or epoch seconds) was: 45s, 12m, 5h, 3d."""
    if at is None:
        return "-"
    when = (
        datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        if isinstance(at, str)
        else float(at)
    )
    seconds = max(0.0, (now if now is not None else time.time()) - when)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "   ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())  # one line: a message's newlines become spaces
