"""`/metrics` scrape time on a big fleet's store: every cell x service in the ledger (with
a rendered spec of realistic size in each row), a long event history, a running rollout.

The scrape is what Prometheus pays each interval: the store read on a connection of its
own (again only if something committed since the last scrape), then the text made. Both
are measured: right after a write, and with the store unchanged. Target: a 1,000-cell x
50-service scrape right after a write in <= 100 ms (median).

Run: .venv/bin/python bench/metrics.py [--cells 1000] [--services 50] [--quick]
--quick (`make test`): 50 x 10, checks the text, no target. Exit status 1: target missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cellops.observe.metrics import ControllerMetrics  # noqa: E402
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, PolicyRecord, WaveRecord  # noqa: E402
from cellops.store.records import RevisionRecord  # noqa: E402
from cellops.store.sqlite import SqliteStore  # noqa: E402

REV = "0123456789abcdef0123456789abcdef01234567"
TARGET_MS = 100.0


def build(path: Path, cells: int, services: int) -> SqliteStore:
    store = SqliteStore(path)
    spec = json.dumps(
        {
            "image": "registry.example/x@sha256:" + "ab" * 32,
            "env": {f"VAR_{i}": "value-" * 4 for i in range(30)},
            "replicas": 2,
        }
    )  # ~1.3 KB, as rendered
    names = [f"cell-{c:04d}" for c in range(cells)]
    with store.transaction():
        for cell in names:
            for s in range(services):
                store.set_applied(
                    cell, f"svc-{s:02d}", rev=REV, hash_="h" * 16, depends_on=(), now=1.0, spec=spec
                )
                store.set_healthy(cell, f"svc-{s:02d}", REV, 2.0)
        for i in range(cells * 20):  # a long history: ~20 events per cell
            store.add_event(float(i), "healthy" if i % 5 else "drift", "x", cell=names[i % cells])
        store.record_revision(RevisionRecord(REV, True, "m", [], 1.0, 0.5))
        store.set_setting("fleet.current", REV)
    wave = WaveRecord(
        name="all",
        batch=1,
        batches=1,
        canary=False,
        bake_seconds=0,
        cells=tuple(PlannedCellRecord(c, (("svc-00", "configured"),)) for c in names),
    )
    store.create_rollout(REV, None, PlanRecord((wave,), PolicyRecord()), 3.0)
    return store  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cells, services = (50, 10) if args.quick else (args.cells, args.services)
    with tempfile.TemporaryDirectory(prefix="cellops-bench-metrics-") as tmp:
        path = Path(tmp) / "cellops.db"
        store = build(path, cells, services)
        metrics = ControllerMetrics(store, path)
        try:
            changed, unchanged, cpu, text = [], [], [], b""
            for run in range(3 if args.quick else args.runs):
                store.add_event(float(run), "note", "a write between two scrapes")
                start, used = time.perf_counter(), time.process_time()
                text = metrics.exposition()
                changed.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - used) * 1000)
                start = time.perf_counter()
                metrics.exposition()
                unchanged.append((time.perf_counter() - start) * 1000)
        finally:
            metrics.close()
            store.close()
    lines = text.count(b"\n")
    assert f'cellops_service_cells{{service="svc-00"}} {cells}.0'.encode() in text, "wrong text"
    median = statistics.median(changed)
    size = f"{lines} lines, {len(text) // 1024} KiB"
    for what, times in (("store changed", changed), ("store unchanged", unchanged)):
        print(
            f"| {cells} x {services} | {size} | {what} | median"
            f" {statistics.median(times):.1f} ms | max {max(times):.1f} ms |"
        )
    print(f"CPU time of a scrape after a write: median {statistics.median(cpu):.1f} ms")
    if not args.quick and median > TARGET_MS:
        print(f"target missed: median {median:.1f} ms > {TARGET_MS:.0f} ms")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
