"""What bench/plan.py measured, and how it prints it: the runs, the table, the profiles."""

from __future__ import annotations

import os
import platform
import pstats
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plan_fleet import Size

ROOT = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 5.0
RSS_TARGET_MIB = 1024.0
INCREMENTAL_TARGET_MS = 100.0


@dataclass(frozen=True)
class ColdRun:
    seconds: float  # inside the child: import cellops + plan
    import_seconds: float
    gc_seconds: float
    process_seconds: float  # seen from the parent: interpreter start to exit
    rss_mib: float
    cells: int
    changes: int


@dataclass(frozen=True)
class IncrementalRun:
    service: str
    seconds: float
    gc_seconds: float
    cells: int
    changes: int
    expected_cells: int
    ok: bool


def _short_file(path: str) -> str:
    if path == "~":
        return "<built-in>"
    for marker in ("/site-packages/", f"{ROOT}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if path.startswith(sys.base_prefix):
        return "<stdlib>/" + Path(path).name
    return path


def print_profile(title: str, stats: pstats.Stats, top: int) -> None:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = getattr(
        stats, "stats", {}
    )
    total = getattr(stats, "total_tt", 0.0)
    for heading, by_cumulative in (("cumulative time", True), ("own time", False)):
        print(f"\n{title}: top {top} by {heading} (profiled total {total:.3f} s)")
        print(f"  {'cum s':>8} {'own s':>8} {'calls':>10}  function")
        rows = sorted(
            raw.items(), key=lambda kv: kv[1][3] if by_cumulative else kv[1][2], reverse=True
        )[:top]
        for (file, line, func), (_cc, calls, own, cum, _callers) in rows:
            where = f"{_short_file(file)}:{line}" if file != "~" else "<built-in>"
            print(f"  {cum:8.3f} {own:8.3f} {calls:10d}  {func}  ({where})")


@dataclass(frozen=True)
class Result:
    size: Size
    cold: list[ColdRun]
    incremental: list[IncrementalRun]

    @property
    def cold_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.cold)

    @property
    def cold_rss(self) -> float:
        return statistics.median(r.rss_mib for r in self.cold)

    @property
    def incremental_ms(self) -> float:
        return statistics.median(r.seconds for r in self.incremental) * 1000

    @property
    def meets_targets(self) -> bool:
        return (
            self.cold_seconds <= COLD_TARGET_S
            and self.cold_rss <= RSS_TARGET_MIB
            and self.incremental_ms <= INCREMENTAL_TARGET_MS
        )


def mark(value: float, limit: float) -> str:
    return "✓ pass" if value <= limit else "✗ FAIL"


def touched(runs: Sequence[IncrementalRun]) -> str:
    low = min(r.cells for r in runs)
    high = max(r.cells for r in runs)
    cells = f"{low}" if low == high else f"{low}-{high}"
    ok = all(r.ok for r in runs)
    return f"{cells} cells, 1 change each {'✓' if ok else '✗ WRONG'}"


def table(results: Sequence[Result]) -> str:
    rows = [
        [
            "cells × services",
            "cold median (s)",
            "cold peak RSS (MiB)",
            "incremental median (ms)",
            "incremental plan touched",
        ],
        [
            "target",
            f"≤ {COLD_TARGET_S:g} s",
            f"≤ {RSS_TARGET_MIB:g} MiB",
            f"≤ {INCREMENTAL_TARGET_MS:g} ms",
            "cells running the service, 1 change each",
        ],
    ]
    for r in results:
        rows.append(
            [
                r.size.label,
                f"{r.cold_seconds:.2f}  {mark(r.cold_seconds, COLD_TARGET_S)}",
                f"{r.cold_rss:.0f}  {mark(r.cold_rss, RSS_TARGET_MIB)}",
                f"{r.incremental_ms:.1f}  {mark(r.incremental_ms, INCREMENTAL_TARGET_MS)}",
                touched(r.incremental),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([lines[0], rule, lines[1], rule, *lines[2:]])


def details(result: Result) -> str:
    cold = result.cold
    lines = [
        f"{result.size.label}:",
        f"  cold runs (s): {', '.join(f'{r.seconds:.2f}' for r in cold)}; medians: import"
        f" cellops {statistics.median(r.import_seconds for r in cold):.2f} s, garbage"
        f" collector {statistics.median(r.gc_seconds for r in cold):.2f} s, whole child process"
        f" with interpreter start {statistics.median(r.process_seconds for r in cold):.2f} s",
        f"  cold plan: {cold[0].cells} cells, {cold[0].changes} changes",
    ]
    for r in result.incremental:
        lines.append(
            f"  incremental {r.service}: {r.seconds * 1000:.1f} ms (garbage collector"
            f" {r.gc_seconds * 1000:.1f} ms); {r.cells} cells, {r.changes} changes; expected"
            f" {r.expected_cells} cells {'ok' if r.ok else 'WRONG'}"
        )
    return "\n".join(lines)


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 0
    return (
        f"machine: nproc={cpus}, {platform.python_implementation()} {platform.python_version()},"
        f" {platform.system()} {platform.machine()}"
    )
