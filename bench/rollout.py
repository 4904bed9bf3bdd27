"""Rollout benchmark: a real controller process, real cell agents, real replica processes.

Measures, on a generated fleet of local cells (each service a tiny stdlib HTTP app):
- commit -> canary cell healthy, pushed by the signed webhook, and found by polling (1 s);
- the app's own start time (spawn -> first good /healthz), the "plus app start" part;
- commit -> every cell healthy, 20 cells x 2 services, bake 0;
- a bad release: failure detected -> the canary back on its last good revision;
- controller CPU per idle minute with 100 cells (and the agents' CPU, for context).

Run: .venv/bin/python bench/rollout.py [--repeat 3] [--idle 60] [--skip-idle]
Medians over --repeat commits. Every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cellops.source.git import commit_all, create_repository  # noqa: E402
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


def write_fleet(repo: Path, cells: int, services: int, waves: str, deadline: str) -> None:
    (repo / "cells").mkdir(parents=True)
    (repo / "cellops.yaml").write_text(
        "apiVersion: cellops.dev/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n"
        f"  rollout:\n    waves:\n{waves}    progressDeadline: {deadline}\n"
        "  imagePolicy: {allowedRegistries: [registry.example.com]}\n"
    )
    for i in range(cells):
        ring = "canary" if i == 0 else "main"
        (repo / "cells" / f"c{i:03d}.yaml").write_text(
            f"apiVersion: cellops.dev/v1\nkind: Cell\nmetadata:\n  name: c{i:03d}\n"
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
            f"  ports: [{{name: http, port: {8000 + j}}}]\n"
            "  probes:\n    readiness: {http: {path: /healthz, port: http}, periodSeconds: 1,"
            " failureThreshold: 1}\n"
        )


class Fleet:
    def __init__(
        self,
        cells: int,
        services: int,
        waves: str,
        poll: str,
        *,
        webhook: bool,
        deadline: str = "10s",
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cellops-bench-"))
        self.repo, self.state = self.dir / "fleet", self.dir / "state"
        write_fleet(self.repo, cells, services, waves, deadline)
        self.head = create_repository(self.repo, "v1")
        self.version = 1
        args = ["up", str(self.repo), "--state-dir", str(self.state), "--no-view", "--poll", poll]
        args += ["--webhook", "0", "--webhook-secret", SECRET] if webhook else []
        self.log = open(self.dir / "controller.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*CELLOPS, *args], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.time() + 30
        while not (self.state / "controller.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        record = json.loads((self.state / "controller.json").read_text())
        self.port = record.get("webhook")
        self.store = SqliteStore(self.state / "cellops.db")

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
            headers={"X-Hub-Signature-256": sig},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()

    def wait_event(self, kind: str, revision: str, timeout: float = 600) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for event in self.store.events(limit=2000, kind=kind):
                if event.revision == revision:
                    return event.at
            time.sleep(0.02)
        recent = "\n".join(f"  {e.kind}: {e.message}" for e in self.store.events(limit=15))
        raise TimeoutError(f"no {kind} event for {revision[:12]}; latest events:\n{recent}")

    def wait_completed(self, revision: str) -> float:
        return self.wait_event("rollout-completed", revision)

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
        self.proc.wait(timeout=30)
        self.log.close()
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


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
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.005)
        times.append(time.time() - start)
        proc.terminate()
        proc.wait()
        shutil.rmtree(folder)
    return statistics.median(times)


CANARY_THEN_ALL = (
    "      - {name: canary, selector: {ring: canary}}\n"
    "      - {name: half, percent: 50}\n      - {name: rest, percent: 100}\n"
)


def bench_canary(repeat: int, webhook: bool) -> float:
    fleet = Fleet(4, 2, CANARY_THEN_ALL, "1s" if not webhook else "60s", webhook=webhook)
    try:
        if webhook:
            fleet.push()
        fleet.wait_completed(fleet.head)
        samples = []
        for _ in range(repeat):
            head, committed = fleet.commit()
            if webhook:
                fleet.push()
            samples.append(fleet.wait_event("healthy", head) - committed)
            fleet.wait_completed(head)
        return statistics.median(samples)
    finally:
        fleet.close()


def bench_all_cells(repeat: int) -> tuple[float, float]:
    fleet = Fleet(20, 2, CANARY_THEN_ALL, "60s", webhook=True)
    try:
        fleet.push()
        fleet.wait_completed(fleet.head)
        samples, failures = [], []
        for _ in range(repeat):
            head, committed = fleet.commit()
            fleet.push()
            samples.append(fleet.wait_completed(head) - committed)
        for _ in range(repeat):
            head, _ = fleet.commit(fail=True)
            fleet.push()
            detected = fleet.wait_event("cell-failed", head)
            failures.append(fleet.wait_event("recovered", head) - detected)
            head, _ = fleet.commit()  # a good release again, so the next round starts clean
            fleet.push()
            fleet.wait_completed(head)
        return statistics.median(samples), statistics.median(failures)
    finally:
        fleet.close()


def bench_idle(cells: int, seconds: float) -> tuple[float, float]:
    fleet = Fleet(
        cells,
        1,
        "      - {name: canary, selector: {ring: canary}}\n      - {name: rest, percent: 100}\n",
        "5s",
        webhook=True,
        deadline="10m",
    )
    try:
        fleet.push()
        fleet.wait_completed(fleet.head)
        time.sleep(3)
        agents = fleet.agent_pids()
        before = fleet.cpu_seconds([fleet.proc.pid]), fleet.cpu_seconds(agents)
        time.sleep(seconds)
        after = fleet.cpu_seconds([fleet.proc.pid]), fleet.cpu_seconds(agents)
        scale = 60.0 / seconds
        return (after[0] - before[0]) * scale, (after[1] - before[1]) * scale
    finally:
        fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds to measure")
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    app = app_start_seconds(5)
    rows.append(("app start (spawn -> /healthz answers)", f"{app:.2f} s", "-"))
    hook = bench_canary(args.repeat, webhook=True)
    rows.append(("commit -> canary healthy (webhook)", f"{hook:.2f} s", "≤ 2 s + app start"))
    poll = bench_canary(args.repeat, webhook=False)
    rows.append(
        ("commit -> canary healthy (poll every 1 s)", f"{poll:.2f} s", "≤ 2 s + app start + poll")
    )
    every, back = bench_all_cells(args.repeat)
    rows.append(("commit -> 20 cells x 2 services healthy (bake 0)", f"{every:.2f} s", "≤ 15 s"))
    rows.append(("failure detected -> canary back on last good", f"{back:.2f} s", "≤ 10 s"))
    if not args.skip_idle:
        controller, agents = bench_idle(100, args.idle)
        rows.append(("controller CPU per idle minute, 100 cells", f"{controller:.2f} s", "-"))
        rows.append(("(100 cell agents' CPU per idle minute, together)", f"{agents:.2f} s", "-"))
    print(
        f"\nmachine: nproc={os.cpu_count()}, CPython {platform.python_version()};"
        f" medians of {args.repeat}\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | {'median':>9} | target")
    print("-" * width + "-+-" + "-" * 9 + "-+-" + "-" * 26)
    for name, value, target in rows:
        print(f"{name.ljust(width)} | {value:>9} | {target}")


if __name__ == "__main__":
    main()
