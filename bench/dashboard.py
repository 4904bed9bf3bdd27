"""The dashboard's first paint in Chromium on a big fleet: Debian's headless chromium
(through its chromedriver) signs in, then opens each page `--runs` times; the browser's
own Paint Timing (first-contentful-paint, from the start of navigation: the request, the
server's rendering, the transfer, the layout) is read back from the page.

The API serves a store of `--cells` x `--services` ledger rows with a running rollout
and a rejected revision (tests/apikit.populate); cells are observed from memory (the
dashboard's cost, not the backend's). Target (full size): the fleet overview's first
paint <= 1 s (median). The overview shows a page of 100 cells; `/?limit=1000` (every
cell's squares at once) is measured too, and reported.

Run: .venv/bin/python bench/dashboard.py [--cells 1000] [--services 50] [--runs 7]
[--screenshots DIR] [--quick]. --quick (`make test`): 50 x 5, 2 runs, checks each page
rendered, no target. Exit status 1: the target missed or a page wrong; 0 with a note
when chromium or chromedriver is missing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.apikit import populate  # noqa: E402
from tests.browserkit import MISSING, chromium  # noqa: E402

from cellops.api.app import create_app  # noqa: E402
from cellops.api.context import ApiContext, Recent  # noqa: E402
from cellops.api.listener import Listener  # noqa: E402
from cellops.backends.base import CellObservation, ServiceObservation  # noqa: E402
from cellops.health import Health  # noqa: E402
from cellops.store.sqlite import SqliteStore  # noqa: E402
from cellops.store.tokens import Role  # noqa: E402

TARGET_MS = 1000.0
PAGES = {  # name: (path, a CSS selector the page must show)
    "overview": ("/", "#matrix td.sq"),
    "overview, every cell": ("/?limit=1000", "#matrix td.sq"),
    "rollout": ("/rollout", "#timeline .wave"),
    "revisions": ("/revisions", "#revisions tr.rejected"),
    "cell": ("/cells/cell-0001", "#services tr[data-service]"),
    "events": ("/events", "#events tbody tr"),
    "dora": ("/dora", "#dora-figures"),
}
PAINT = """const paint = performance.getEntriesByType('paint')
  .find(e => e.name === 'first-contentful-paint');
const nav = performance.getEntriesByType('navigation')[0];
return paint ? [paint.startTime, nav.responseStart - nav.requestStart] : null;"""


def observer(services: int) -> Any:
    seen = {
        f"svc-{i:02d}": ServiceObservation(f"svc-{i:02d}", f"h-svc-{i:02d}", Health.HEALTHY, 2, 2)
        for i in range(services)
    }
    return lambda cell: CellObservation(cell, True, seen)


def paint(browser: Any, url: str, css: str) -> tuple[float, float]:
    """Open `url` afresh; its first contentful paint and the server's time to the first
    byte of its answer (ms), once `css` is on the page."""
    browser.get(url)
    if not browser.find_elements("css selector", css):
        raise AssertionError(f"{url}: nothing matches {css!r}")
    deadline = time.monotonic() + 30
    while (found := browser.execute_script(PAINT)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if found is None:
        raise AssertionError(f"{url}: Chromium reported no first-contentful-paint")
    return float(found[0]), float(found[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--screenshots", type=Path, help="save each page as DIR/NAME.png")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if MISSING:
        print(f"bench/dashboard.py: skipped, it {MISSING}")
        return 0
    cells, services, runs = (50, 5, 2) if args.quick else (args.cells, args.services, args.runs)
    with tempfile.TemporaryDirectory(prefix="cellops-bench-dashboard-") as tmp:
        store = SqliteStore(Path(tmp) / "cellops.db")
        started = time.perf_counter()
        populate(store, cells, services)
        print(f"fleet: {cells} cells x {services} services ({time.perf_counter() - started:.1f} s)")
        _, token = store.create_token("bench", Role.VIEWER, time.time())
        listener = Listener(
            create_app(ApiContext(store, observe=Recent(observer(services)))), "127.0.0.1", 0
        )
        url = f"http://127.0.0.1:{listener.start()}"
        try:
            with chromium(1400, 1000) as browser:
                return _session(browser, url, token, runs, args)
        finally:
            listener.stop()
            store.close()


def _session(browser: Any, url: str, token: str, runs: int, args: argparse.Namespace) -> int:
    """Sign in, then measure each page."""
    browser.get(url + "/login")
    browser.find_element("id", "token").send_keys(token)
    browser.find_element("css selector", "#login button[type=submit]").click()
    deadline = time.monotonic() + 30
    while not browser.find_elements("id", "whoami") and time.monotonic() < deadline:
        time.sleep(0.05)
    return _measure(browser, url, runs, args)


def _measure(browser: Any, url: str, runs: int, args: argparse.Namespace) -> int:
    failed = False
    print(
        f"{'page':<22} {'first paint median':>18} {'min':>8} {'max':>8} {'server':>8}"
        f"  (ms, {runs} runs; server: its time to the first byte, median)"
    )
    for name, (path, css) in PAGES.items():
        paint(browser, url + path, css)  # warm: templates compiled, observations cached
        found = [paint(browser, url + path, css) for _ in range(runs if "every" not in name else 3)]
        times = [first for first, _ in found]
        median = statistics.median(times)
        server = statistics.median(answered for _, answered in found)
        verdict = ""
        if name == "overview" and not args.quick:
            failed |= median > TARGET_MS
            verdict = f"  target <= {TARGET_MS:.0f} ms: {'MISSED' if median > TARGET_MS else 'ok'}"
        print(
            f"{name:<22} {median:>18.0f} {min(times):>8.0f} {max(times):>8.0f} {server:>8.0f}"
            f"{verdict}"
        )
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            slug = name.replace(", every cell", "-all").replace(" ", "-")
            browser.save_screenshot(str(args.screenshots / f"{slug}-{args.cells}-cells.png"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
