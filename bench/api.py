"""The controller's API on a big fleet's store: request latency per endpoint, the /metrics
scrape through the API, and an event's way to a Server-Sent Events client.

A real uvicorn on 127.0.0.1 serves the API over a store of `--cells` x `--services`
ledger rows (each with a rendered spec of realistic size), a running rollout over every
cell (a commit that changes 2 services in each) and a long event history; one client
with a kept-alive connection asks each endpoint `--requests` times. Cells are observed
from memory (the API's cost, not the backend's: local cells' status files and Kubernetes
cells' last reads are each a dictionary look-up for the API too, cached for a second).
Targets (full size): p99 of each endpoint <= 50 ms, /metrics median <= 100 ms, event ->
SSE client median <= 500 ms.

Run: .venv/bin/python bench/api.py [--cells 1000] [--services 50] [--requests 200]
[--quick]. --quick (`make test`): 50 x 5, few requests, checks answers, no targets.
Exit status 1: a target missed or an answer wrong.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.apikit import healthy, populate  # noqa: E402

from cellops.api.app import create_app  # noqa: E402
from cellops.api.context import ApiContext, Recent  # noqa: E402
from cellops.api.listener import Listener  # noqa: E402
from cellops.api.serve import protected  # noqa: E402
from cellops.store.sqlite import SqliteStore  # noqa: E402
from cellops.store.tokens import Role  # noqa: E402

P99_MS, SCRAPE_MS, SSE_MS = 50.0, 100.0, 500.0
SPEC = json.dumps(
    {
        "image": "registry.example/x@sha256:" + "ab" * 32,
        "env": {f"VAR_{i}": "value-" * 4 for i in range(30)},
        "replicas": 2,
    }
)  # ~1.3 KB, as rendered


def _metrics_routes(store: SqliteStore, path: Path) -> tuple[list[Any], Any]:
    """/metrics as the controller mounts it (H2's observe package), if present."""
    try:
        from cellops.observe.http import metrics_route
        from cellops.observe.metrics import ControllerMetrics
    except ImportError:
        return [], None
    metrics = ControllerMetrics(store, path)
    return [metrics_route(metrics)], metrics


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _time(session: requests.Session, url: str, count: int) -> tuple[list[float], Any]:
    times, body = [], None
    for _ in range(count):
        start = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        body = response.json() if "json" in response.headers["content-type"] else response.text
    return times, body


def _sse(url: str, token: str, writer: SqliteStore, samples: int) -> list[float]:
    """Event committed -> its `data:` line read by a client on the stream, in ms."""
    latencies: list[float] = []
    lines: list[tuple[float, str]] = []
    arrived = threading.Condition()

    def listen() -> None:
        with requests.get(
            f"{url}/api/v1/events/stream?kind=bench",
            headers={"Authorization": f"Bearer {token}"},
            stream=True,
            timeout=120,
        ) as response:
            for line in response.iter_lines(decode_unicode=True):
                with arrived:
                    lines.append((time.perf_counter(), line))
                    arrived.notify_all()
                if line.startswith("data: ") and f'"bench {samples - 1}"' in line:
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    with arrived:
        assert arrived.wait_for(lambda: lines, timeout=60), "the stream never opened"
    for number in range(samples):
        start = time.perf_counter()
        writer.add_event(time.time(), "bench", f"bench {number}")
        with arrived:
            found = arrived.wait_for(
                lambda n=number: any(f'"bench {n}"' in text for _, text in lines), timeout=30
            )
        assert found, f"event {number} never reached the stream"
        at = next(t for t, text in lines if f'"bench {number}"' in text)
        latencies.append((at - start) * 1000)
        time.sleep(0.05)  # spread the samples over the stream's polling phase
    thread.join(30)
    return latencies


def main() -> int:  # noqa: PLR0915 - one bench, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cells, services, count = (
        (50, 5, 10) if args.quick else (args.cells, args.services, args.requests)
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="cellops-bench-api-") as tmp:
        path = Path(tmp) / "cellops.db"
        store = SqliteStore(path)
        started = time.perf_counter()
        populate(store, cells, services, spec=SPEC, changed=2)  # a commit: 2 services
        with store.transaction():
            for i in range(cells * 20):  # ~20 events per cell
                store.add_event(
                    float(i), "healthy" if i % 5 else "drift", "x", cell=f"cell-{i % cells:04d}"
                )
        built = time.perf_counter() - started
        _, token = store.create_token("bench", Role.VIEWER, time.time())
        routes, metrics = _metrics_routes(store, path)
        ctx = ApiContext(
            SqliteStore(path),
            observe=Recent(healthy),
            reader=SqliteStore(path),
            live=SqliteStore(path),
        )
        app = create_app(ctx, extra=[protected(routes)] if routes else ())
        listener = Listener(app, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{listener.start()}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        print(
            f"store: {cells} cells x {services} services, {cells * 20} events"
            f" (built in {built:.0f}s)"
        )
        print("| endpoint | p50 ms | p99 ms | max ms |")
        print("| --- | --- | --- | --- |")
        try:
            endpoints = [
                "/api/v1/fleet",
                "/api/v1/cells?limit=100",
                "/api/v1/cells/cell-0007",
                "/api/v1/rollouts/latest",
                "/api/v1/revisions?limit=50",
                "/api/v1/events?limit=100",
                "/api/v1/events?limit=100&cell=cell-0007",
            ]
            for endpoint in endpoints:
                _time(session, url + endpoint, 2)  # warm
                times, body = _time(session, url + endpoint, count)
                p99 = _percentile(times, 99)
                print(
                    f"| `{endpoint}` | {statistics.median(times):.1f} | {p99:.1f} |"
                    f" {max(times):.1f} |"
                )
                if endpoint == "/api/v1/fleet" and body["cells"] != cells:
                    print(f"wrong answer: {body['cells']} cells")
                    failed = True
                if not args.quick and p99 > P99_MS:
                    print(f"target missed: {endpoint} p99 {p99:.1f} ms > {P99_MS:.0f} ms")
                    failed = True
            if routes:
                times, text = _time(session, url + "/metrics", max(3, count // 10))
                median = statistics.median(times)
                print(
                    f"| `/metrics` (through the API, with a token) | {median:.1f} | - |"
                    f" {max(times):.1f} |"
                )
                if "cellops_" not in text:
                    print("wrong answer: no cellops_ series")
                    failed = True
                if not args.quick and median > SCRAPE_MS:
                    print(f"target missed: /metrics median {median:.1f} ms > {SCRAPE_MS:.0f} ms")
                    failed = True
            else:
                print("/metrics: not built yet (cellops.observe missing): not measured")
            writer = SqliteStore(path)
            latencies = _sse(url, token, writer, 5 if args.quick else 40)
            writer.close()
            median = statistics.median(latencies)
            print(
                f"event -> SSE client: median {median:.0f} ms, p99"
                f" {_percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms"
                f" ({len(latencies)} events)"
            )
            if not args.quick and median > SSE_MS:
                print(f"target missed: event -> SSE median {median:.0f} ms > {SSE_MS:.0f} ms")
                failed = True
        finally:
            session.close()
            listener.stop()
            if metrics is not None:
                metrics.close()
            ctx.close()
            store.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
