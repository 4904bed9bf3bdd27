"""The matrix's squares as HTML, made in Python: a page of 100 cells x 50 services is
5,000 squares, which Jinja2's loop would take several times longer to render (pure;
every value escaped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape


def squares(row: dict[str, Any], services: Sequence[str], wide: bool) -> Markup:
    """One `<td>` per service of the fleet for a row of `matrix.matrix`: coloured by
    health, the revision and since when in its title (and shown, when `wide`)."""
    parts: list[str] = []
    for service, square in zip(services, row["squares"], strict=True):
        if square is None:
            parts.append('<td class="sq none"></td>')
            continue
        since = square["since"][:19].replace("T", " ")
        reason = f" — {square['reason']}" if square["reason"] else ""
        title = f"{service}: {square['health']} at {square['revision']} since {since}{reason}"
        shown = (
            f"<code>{escape(square['revision'][:7])}</code> <small>{escape(since[11:])}</small>"
            if wide
            else ""
        )
        parts.append(
            f'<td class="sq h-{escape(square["health"])}" title="{escape(title)}">{shown}</td>'
        )
    return Markup("".join(parts))
