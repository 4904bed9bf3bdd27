"""Rollout benchmark: a real controller process, real cell agents, real replica processes.

Measures, on a generated fleet of local cells (each service a tiny stdlib HTTP app):
- commit -> canary cell healthy, pushed by the signed webhook, and found by polling (1 s);
- the app's own start time (spawn -> first good /healthz), the "plus app start" part;
- commit -> every cell healthy, 20 cells x 2 services, bake 0;
- a bad release: failure detected -> the canary back on its last good revision;
- controller CPU per idle minute with 100 cells (and the agents' CPU, for context).

Run: .venv/bin/python bench/rollout.py [--repeat 3] [--idle 60] [--skip-idle] [--quick]
Medians over --repeat commits. Every process started is stopped at the end. After each
rollout every cell must serve the new version (the canary its last good one after a bad
release); exit 1 if one does not, or an event never comes. --quick: every measure once on
a few cells (`make test`). Cell names carry a random tag: each run has its own addresses.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cellops.source.git import commit_all, create_repository  # noqa: E402
from cellops.spec.cell import derived_address  # noqa: E402
from cellops.store.sqlite import SqliteStore  # noqa: E402

CELLOPS = [sys.executable, "-m", "cellops.cli.main"]
DIGEST = "sha256:" + "ab" * 32
SECRET = "bench-secret"
APP = """import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
VERSION = "{version}"
FAIL = {fail}
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = not FAIL or self.path == "/"
        self.send_response(200 if ok else 500)
        self.end_headers()
        self.wfile.write(VERSION.encode())
    def log_message(self, *a): pass
ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
"""


PORT_BASE = 8000  # service s<j> listens on PORT_BASE + j at its cell's own address
CANARY_THEN_ALL = (
    "      - {name: canary, selector: {ring: canary}}\n"
    "      - {name: half, percent: 50}\n      - {name: rest, percent: 100}\n"
)
CANARY_THEN_REST = (
    "      - {name: canary, selector: {ring: canary}}\n      - {name: rest, percent: 100}\n"
)


class BenchError(Exception):
    """A rollout did not do what it should (an event missing, a cell on the wrong version)."""


@dataclass(frozen=True)
class Setup:
    """One fleet: what it holds and how the controller hears of commits."""

    cells: int
    services: int
    waves: str
    poll: str
    webhook: bool
    deadline: str = "10s"


FLEETS = {  # a fleet per measure, each alone on the machine while it runs
    "webhook": Setup(4, 2, CANARY_THEN_ALL, "60s", webhook=True),
    "poll": Setup(4, 2, CANARY_THEN_ALL, "1s", webhook=False),
    "all": Setup(20, 2, CANARY_THEN_ALL, "60s", webhook=True),
    "idle": Setup(100, 1, CANARY_THEN_REST, "5s", webhook=True, deadline="10m"),
}
# --quick: every measure on one small fleet that hears of commits both ways
QUICK = Setup(2, 1, CANARY_THEN_REST, "1s", webhook=True)
TIMEOUT, QUICK_TIMEOUT = 600.0, 180.0  # for any one event


def cell_names(cells: int) -> list[str]:
    tag = "b" + secrets.token_hex(3)  # a run of its own: loopback addresses come from names
    return [f"{tag}-c{i:03d}" for i in range(cells)]


def write_fleet(repo: Path, cells: list[str], services: int, waves: str, deadline: str) -> None:
    (repo / "cells").mkdir(parents=True)
    (repo / "cellops.yaml").write_text(
        "apiVersion: cellops.dev/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n"
        f"  rollout:\n    waves:\n{waves}    progressDeadline: {deadline}\n"
        "  imagePolicy: {allowedRegistries: [registry.example.com]}\n"
    )
    for i, name in enumerate(cells):
        ring = "canary" if i == 0 else "main"
        (repo / "cells" / f"{name}.yaml").write_text(
            f"apiVersion: cellops.dev/v1\nkind: Cell\nmetadata:\n  name: {name}\n"
            f"  labels: {{ring: {ring}, region: r{i % 2}}}\nspec: {{backend: local}}\n"
        )
    for j in range(services):
        folder = repo / "services" / f"s{j}"
        (folder / "app").mkdir(parents=True)
        (folder / "app" / "app.py").write_text(APP.format(version="1", fail=False))
        (folder / "service.yaml").write_text(
            f"apiVersion: cellops.dev/v1\nkind: Service\nmetadata: {{name: s{j}}}\nspec:\n"
            f"  image: registry.example.com/bench/s{j}@{DIGEST}\n"
            "  run: {command: [python3, app.py]}\n  replicas: 1\n"
            f"  ports: [{{name: http, port: {PORT_BASE + j}}}]\n"
            "  probes:\n    readiness: {http: {path: /healthz, port: http}, periodSeconds: 1,"
            " failureThreshold: 1}\n"
        )


class Fleet:
    def __init__(self, setup: Setup, timeout: float) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cellops-bench-"))
        self.repo, self.state = self.dir / "fleet", self.dir / "state"
        self.setup, self.cells, self.timeout = setup, cell_names(setup.cells), timeout
        write_fleet(self.repo, self.cells, setup.services, setup.waves, setup.deadline)
        self.head = create_repository(self.repo, "v1")
        self.version = 1
        args = ["up", str(self.repo), "--state-dir", str(self.state), "--no-view"]
        args += ["--poll", setup.poll]
        args += ["--webhook", "0", "--webhook-secret", SECRET] if setup.webhook else []
        self.log = open(self.dir / "controller.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*CELLOPS, *args], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        started = self.dir / "state" / "controller.json"
        until = time.monotonic() + 60
        while not started.exists() and self.proc.poll() is None and time.monotonic() < until:
            time.sleep(0.05)
        if not started.exists():
            self.close()
            raise BenchError(f"the controller did not start:\n{self.log_tail()}")
        self.port = json.loads(started.read_text()).get("webhook")
        self.store = SqliteStore(self.state / "cellops.db")

    def log_tail(self) -> str:
        lines = (self.dir / "controller.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-15:])

    def commit(self, fail: bool = False, service: str = "s0") -> tuple[str, float]:
        self.version += 1
        app = self.repo / "services" / service / "app" / "app.py"
        app.write_text(APP.format(version=self.version, fail=fail))
        self.head = commit_all(self.repo, f"v{self.version}")
        return self.head, time.time()

    def push(self) -> None:
        body = json.dumps({"after": self.head}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhook",
            data=body,
            headers={"X-Hub-Signature-256": sig, "X-GitHub-Event": "push"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode(errors="replace")
            raise BenchError(f"the webhook refused the push: {exc.code} {answer}") from exc

    def wait_event(self, kind: str, revision: str) -> float:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for event in self.store.events(limit=2000, kind=kind):
                if event.revision == revision:
                    return event.at
            time.sleep(0.02)
        recent = "\n".join(f"  {e.kind}: {e.message}" for e in self.store.events(limit=15))
        raise BenchError(f"no {kind} event for {revision[:12]}; latest events:\n{recent}")

    def wait_completed(self, revision: str) -> float:
        return self.wait_event("rollout-completed", revision)

    def first_rollout(self) -> None:
        if self.setup.webhook:
            self.push()
        self.wait_completed(self.head)
        self.serves(self.version)

    def serves(self, version: int, cells: list[str] | None = None) -> None:
        """Every cell (of `cells`) answers GET / of s0 with `version`, within 60 s."""
        pending, answers = list(cells or self.cells), {}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for cell in list(pending):
                answers[cell] = http_get(f"http://{derived_address('bench', cell)}:{PORT_BASE}/")
                if answers[cell] == str(version):
                    pending.remove(cell)
            time.sleep(0.05 if pending else 0)
        if pending:
            raise BenchError(f"s0 should serve version {version}; got {answers}")

    def cpu_seconds(self, pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def agent_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.state / "cells").glob("*/agent.pid"):
            pids.append(int(json.loads(pidfile.read_text())["pid"]))
        return pids

    def close(self) -> None:
        subprocess.run(
            [*CELLOPS, "down", str(self.repo), "--state-dir", str(self.state)],
            capture_output=True,
            timeout=300,
            check=False,
            cwd=ROOT,
        )
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if hasattr(self, "store"):
            self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def app_start_seconds(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp())
        (folder / "app.py").write_text(APP.format(version="1", fail=False))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=folder,
            env={"HOST": "127.0.0.1", "PORT": str(port), "PATH": os.environ["PATH"]},
        )
        try:
            while http_get(f"http://127.0.0.1:{port}/healthz") is None:
                if proc.poll() is not None or time.time() - start > 60:
                    raise BenchError(f"the app did not answer on port {port}")
                time.sleep(0.005)
            times.append(time.time() - start)
        finally:
            proc.terminate()
            proc.wait()
            shutil.rmtree(folder)
    return statistics.median(times)


@contextmanager
def fleet_for(measure: str, shared: Fleet | None, timeout: float) -> Iterator[Fleet]:
    """The fleet of one measure (its first commit everywhere), or the shared quick one."""
    if shared is not None:
        yield shared
        return
    fleet = Fleet(FLEETS[measure], timeout)
    try:
        fleet.first_rollout()
        yield fleet
    finally:
        fleet.close()


def bench_canary(fleet: Fleet, repeat: int, webhook: bool) -> float:
    """Commit -> canary healthy; pushed through the webhook, or left for polling to find."""
    samples = []
    for _ in range(repeat):
        head, committed = fleet.commit()
        if webhook:
            fleet.push()
        samples.append(fleet.wait_event("healthy", head) - committed)
        fleet.wait_completed(head)
        fleet.serves(fleet.version)
    return statistics.median(samples)


def bench_all_cells(fleet: Fleet, repeat: int) -> tuple[float, float]:
    samples, failures = [], []
    for _ in range(repeat):
        head, committed = fleet.commit()
        fleet.push()
        samples.append(fleet.wait_completed(head) - committed)
        fleet.serves(fleet.version)
    for _ in range(repeat):
        good = fleet.version
        head, _ = fleet.commit(fail=True)
        fleet.push()
        detected = fleet.wait_event("cell-failed", head)
        failures.append(fleet.wait_event("recovered", head) - detected)
        fleet.serves(good, fleet.cells[:1])  # the canary, back on its last good version
        head, _ = fleet.commit()  # a good release again, so the next round starts clean
        fleet.push()
        fleet.wait_completed(head)
        fleet.serves(fleet.version)
    return statistics.median(samples), statistics.median(failures)


def bench_idle(fleet: Fleet, seconds: float) -> tuple[float, float]:
    time.sleep(min(3.0, seconds))  # settle: the last replicas start
    agents = fleet.agent_pids()
    before = fleet.cpu_seconds([fleet.proc.pid]), fleet.cpu_seconds(agents)
    time.sleep(seconds)
    after = fleet.cpu_seconds([fleet.proc.pid]), fleet.cpu_seconds(agents)
    fleet.serves(fleet.version)  # still serving after the idle time
    scale = 60.0 / seconds
    return (after[0] - before[0]) * scale, (after[1] - before[1]) * scale


def measure(args: argparse.Namespace, shared: Fleet | None) -> list[tuple[str, str, str]]:
    timeout = QUICK_TIMEOUT if shared else TIMEOUT
    app = app_start_seconds(1 if shared else 5)
    rows = [("app start (spawn -> /healthz answers)", f"{app:.2f} s", "-")]
    with fleet_for("webhook", shared, timeout) as fleet:
        hook = bench_canary(fleet, args.repeat, webhook=True)
    rows.append(("commit -> canary healthy (webhook)", f"{hook:.2f} s", "≤ 2 s + app start"))
    with fleet_for("poll", shared, timeout) as fleet:
        poll = bench_canary(fleet, args.repeat, webhook=False)
    rows.append(
        ("commit -> canary healthy (poll every 1 s)", f"{poll:.2f} s", "≤ 2 s + app start + poll")
    )
    with fleet_for("all", shared, timeout) as fleet:
        every, back = bench_all_cells(fleet, args.repeat)
        size = f"{fleet.setup.cells} cells x {fleet.setup.services} services"
    rows.append((f"commit -> {size} healthy (bake 0)", f"{every:.2f} s", "≤ 15 s"))
    rows.append(("failure detected -> canary back on last good", f"{back:.2f} s", "≤ 10 s"))
    if not args.skip_idle:
        with fleet_for("idle", shared, timeout) as fleet:
            controller, agents = bench_idle(fleet, args.idle)
            n = fleet.setup.cells
        rows.append((f"controller CPU per idle minute, {n} cells", f"{controller:.2f} s", "-"))
        rows.append((f"({n} cell agents' CPU per idle minute, together)", f"{agents:.2f} s", "-"))
    return rows


def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    if not args.quick:
        return measure(args, None)
    shared = Fleet(QUICK, QUICK_TIMEOUT)
    try:
        shared.first_rollout()
        return measure(args, shared)
    finally:
        shared.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds to measure")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--quick", action="store_true", help="every measure once, few cells")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.idle = 1, 2.0
    if args.repeat < 1 or args.idle <= 0:
        parser.error("--repeat must be at least 1 and --idle positive")
    try:
        rows = run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nmachine: nproc={os.cpu_count()}, CPython {platform.python_version()};"
        f" medians of {args.repeat}\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | {'median':>9} | target")
    print("-" * width + "-+-" + "-" * 9 + "-+-" + "-" * 26)
    for name, value, target in rows:
        print(f"{name.ljust(width)} | {value:>9} | {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
