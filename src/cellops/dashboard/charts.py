"""The DORA page's charts as inline SVG, drawn on the server (pure: numbers in, markup
out; every label escaped). Presentation attributes only, so a strict Content Security
Policy (no inline styles) still shows them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 22  # the height of one bar's row
LABEL = 150  # the width of the labels' column
COLOURS = {"ok": "#2e9d5b", "failed": "#d0433b", "other": "#9aa3ad", "p50": "#3a78c2"}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: nothing measured (shown as "-")
    text: str  # the value as shown


def bars(items: Sequence[Bar], title: str, width: int = 520) -> Markup:
    """A horizontal bar per item, scaled to the largest value."""
    top = max((b.value for b in items if b.value is not None), default=0.0) or 1.0
    span = width - LABEL - 80
    height = ROW * max(len(items), 1) + 8
    parts = [_open(title, width, height)]
    for row, bar in enumerate(items):
        y = 4 + row * ROW
        length = 0.0 if bar.value is None else max(bar.value / top * span, 1.0)
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{LABEL}" y="{y + 3}" width="{length:.1f}" height="{ROW - 8}"'
            f' fill="{COLOURS["p50"]}"><title>{escape(bar.label)}: {escape(bar.text)}</title>'
            f'</rect><text x="{LABEL + length + 6:.1f}" y="{y + 15}">{escape(bar.text)}</text>'
        )
    if not items:
        parts.append(f'<text x="{LABEL}" y="18">nothing in this window</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Day:
    label: str  # e.g. 11-30
    ok: int
    failed: int
    other: int


def daily(days: Sequence[Day], title: str, width: int = 640, height: int = 180) -> Markup:
    """A stacked column per day: rollouts that completed, failed, or ended otherwise."""
    top = max((d.ok + d.failed + d.other for d in days), default=0) or 1
    plot = height - 36
    step = (width - 40) / max(len(days), 1)
    column = max(min(step * 0.7, 28.0), 2.0)
    parts = [_open(title, width, height)]
    parts.append(f'<text x="4" y="14">{top}</text><text x="4" y="{plot + 4}">0</text>')
    for index, day in enumerate(days):
        x = 34 + index * step
        base = float(plot)
        for kind, count in (("ok", day.ok), ("failed", day.failed), ("other", day.other)):
            if not count:
                continue
            tall = count / top * (plot - 10)
            base -= tall
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{column:.1f}" height="{tall:.1f}"'
                f' fill="{COLOURS[kind]}"><title>{escape(day.label)}: {count} {kind}</title>'
                "</rect>"
            )
        if len(days) <= 16 or index % max(len(days) // 8, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}">{escape(day.label)}</text>')
    parts.append(f'<line x1="32" y1="{plot}" x2="{width}" y2="{plot}" stroke="#888"/></svg>')
    return Markup("".join(parts))


def _open(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" font-size="12">'
        f"<title>{escape(title)}</title>"
    )


def seconds(value: float | int | None) -> str:
    """A duration for people: 42 s, 3.5 min, 2.1 h, 1.5 d; '-' for none."""
    if value is None:
        return "-"
    value = float(value)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
