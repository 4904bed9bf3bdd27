"""Local cells driven through their files, for tests: a cell's agent, proxy and replicas
are real OS processes; `desired.json` goes in, `status.json` comes out.

Every cell gets its own loopback address (127.77.x.y, random per test so that concurrent
runs do not meet), and `Cells.finish` stops what a test started and checks that no
process is left that runs in, or names, the test's temporary folder.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cellops.backends.local import ownership, process
from cellops.backends.local.layout import CellPaths, cell_paths, read_json, write_json
from cellops.health.replicas import PodView

T = TypeVar("T")

# A tiny HTTP app, controlled from outside:
#   CONTROL_DIR/unready  -> /healthz answers 500      NEVER_READY=1  -> /healthz always 500
#   CONTROL_DIR/dead     -> /livez answers 500        EXIT_AT_START=1 -> exits at once (code 3)
#   CONTROL_DIR/started  -> /startz answers 200 (500 without it)
# Every answer says which replica (CELLOPS_REPLICA), port and VERSION served it. On SIGTERM
# it keeps serving for DRAIN_SECONDS (like a preStop hook) and then exits.
APP = r"""
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL = os.environ.get("CONTROL_DIR", ".")
if os.environ.get("EXIT_AT_START"):
    print("exiting at start, as told", flush=True)
    sys.exit(3)


def flag(name):
    return os.path.exists(os.path.join(CONTROL, name))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            ok = not flag("unready") and not os.environ.get("NEVER_READY")
        elif self.path == "/livez":
            ok = not flag("dead")
        elif self.path == "/startz":
            ok = flag("started")
        else:
            ok = True
        body = json.dumps({
            "replica": os.environ.get("CELLOPS_REPLICA"),
            "port": int(os.environ["PORT"]),
            "host": os.environ["HOST"],
            "version": os.environ.get("VERSION", ""),
            "pid": os.getpid(),
        }).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print("request", self.path, flush=True)


server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
server.daemon_threads = True
drain = float(os.environ.get("DRAIN_SECONDS", "0.5"))
signal.signal(signal.SIGTERM, lambda *_: threading.Timer(drain, os._exit, (0,)).start())
print(f"listening on {os.environ['HOST']}:{os.environ['PORT']} as "
      f"{os.environ.get('CELLOPS_REPLICA')}", flush=True)
server.serve_forever()
"""


def wait_for(what: str, check: Callable[[], T | None], timeout: float, poll: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def get(host: str, port: int, path: str = "/", timeout: float = 3) -> dict[str, Any]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
        return dict(json.loads(body))
    finally:
        connection.close()


def serving(cell: Cell, port: int, pods: list[dict[str, Any]], timeout: float = 10) -> None:
    """Wait until the service port answers from every one of `pods`.

    A pod is reported ready once the cell's proxy routes to it; a pod that was not
    ready before may still be routed to for a moment after its readiness passed.
    """
    want = {p["id"] for p in pods}

    def answers_from_all() -> bool:
        seen = set()
        for _ in range(2 * len(want)):
            try:
                seen.add(get(cell.host, port, timeout=2)["replica"])
            except (OSError, http.client.HTTPException, AssertionError):
                return False
        return seen == want

    wait_for(f"port {port} to answer from {sorted(want)}", answers_from_all, timeout)


def bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def fresh_address(ports: tuple[int, ...] = (8080, 8081, 8082, 8090, 8091)) -> str:
    """A loopback address no other test (or concurrent run) is using."""
    while True:
        host = f"127.77.{random.randint(1, 254)}.{random.randint(1, 254)}"
        if all(bindable(host, p) for p in ports) and ownership.holder(host) is None:
            return host


def probe_http(path: str, period: int = 1, **extra: int) -> dict[str, Any]:
    return {"http": {"path": path, "port": "http"}, "periodSeconds": period, **extra}


class Cell:
    """One cell driven directly through its files: desired.json in, status.json out."""

    def __init__(self, state_root: Path, name: str, app: Path) -> None:
        self.name = name
        self.paths: CellPaths = cell_paths(state_root, name)
        self.host = fresh_address()
        self.app = app
        self.agents: list[subprocess.Popen[bytes]] = []
        self.pids_seen: set[int] = set()

    # -- the agent ------------------------------------------------------------------------
    def start_agent(self) -> subprocess.Popen[bytes]:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.pidfile.unlink(missing_ok=True)
        with open(self.paths.agent_log, "ab") as log:
            agent = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cellops.backends.local.agent",
                    "--cell-root",
                    str(self.paths.root),
                    "--host",
                    self.host,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.agents.append(agent)
        wait_for(
            "the agent's pid file",
            lambda: (read_json(self.paths.pidfile) or {}).get("pid") == agent.pid,
            15,
        )
        return agent

    def agent_log(self) -> str:
        return self.paths.agent_log.read_text() if self.paths.agent_log.exists() else ""

    # -- desired state --------------------------------------------------------------------
    def service(
        self,
        hash_: str,
        *,
        replicas: int = 1,
        port: int = 8080,
        env: dict[str, str] | None = None,
        probes: dict[str, Any] | None = None,
        strategy: dict[str, int] | None = None,
        cwd: Path | None = None,
        control: Path | None = None,
    ) -> dict[str, Any]:
        control = control or self.control()
        return {
            "hash": hash_,
            "revision": f"rev-{hash_}",
            "replicas": replicas,
            "command": [sys.executable, "server.py"],
            "cwd": str(cwd or self.app),
            "env": {"CONTROL_DIR": str(control), **(env or {})},
            "ports": [{"name": "http", "port": port}],
            "probes": probes if probes is not None else {"readiness": probe_http("/healthz")},
            "strategy": strategy or {"maxSurge": 1, "maxUnavailable": 0},
        }

    def control(self, which: str = "") -> Path:
        folder = self.paths.root.parent.parent / f"control-{self.name}{which}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def apply(self, services: dict[str, dict[str, Any]], hash_: str | None = None) -> str:
        hash_ = hash_ or "doc-" + "-".join(f"{n}:{s['hash']}" for n, s in sorted(services.items()))
        write_json(self.paths.desired, {"hash": hash_, "services": services})
        return hash_

    # -- what runs ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status = read_json(self.paths.status) or {}
        for service in status.get("services", {}).values():
            self.pids_seen.update(p["pid"] for p in service["pods"] if p["pid"])
        return status

    def pods(self, service: str) -> list[dict[str, Any]]:
        return list(self.status().get("services", {}).get(service, {}).get("pods", []))

    def records(self) -> list[dict[str, Any]]:
        return [read_json(p) or {} for p in sorted(self.paths.replicas.glob("*.json"))]

    def ready(
        self, service: str, count: int, hash_: str | None = None, applied: str | None = None
    ) -> list[dict[str, Any]] | None:
        """The pods, once exactly `count` of them are there, ready (at `hash_`)."""
        status = self.status()
        if applied is not None and status.get("applied") != applied:
            return None
        pods = status.get("services", {}).get(service, {}).get("pods", [])
        good = [p for p in pods if p["ready"] and (hash_ is None or p["hash"] == hash_)]
        return pods if len(pods) == count == len(good) else None

    def proxy(self) -> dict[str, Any]:
        """The cell's proxy as it reports itself: pid, listeners, routes."""
        return read_json(self.paths.proxy) or {}

    def log_of(self, service: str, replica: str) -> Path:
        return self.paths.logs(service) / f"{replica}.log"

    # -- clean-up -------------------------------------------------------------------------
    def kill_everything(self) -> None:
        for agent in self.agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                try:
                    agent.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait(timeout=10)
        for record in self.records():
            process.kill_group(int(record.get("pid", 0)), int(record.get("started", 0)))
        proxy = read_json(self.paths.proxy) or {}
        process.kill_group(int(proxy.get("pid", 0)), int(proxy.get("started") or 0))


def runs_app(pid: int) -> bool:
    """`pid` is a live (not zombie) process running one of the test apps."""
    if process.start_time(pid) is None:
        return False
    try:
        return b"server.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def processes_under(folder: Path) -> list[str]:
    """Live processes (not zombies) that run in `folder` or name it on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                cwd = ""
        except (OSError, ValueError):
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(f"{entry.name}: {cmdline.strip()} (cwd {cwd})")
    return found


def assert_no_processes_left(folder: Path) -> None:
    deadline = time.monotonic() + 5
    while (left := processes_under(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for line in left:  # do not leak them, but fail
        pid = int(line.split(":")[0])
        process.signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, "processes left behind:\n" + "\n".join(left)


class Cells:
    """Makes cells under one folder; `finish` stops what they started and checks that no
    process is left that runs in, or names, the folder."""

    def __init__(self, folder: Path, app: Path) -> None:
        self.folder, self.app = folder, app
        self.made: list[Cell] = []

    def __call__(self, name: str) -> Cell:
        cell = Cell(self.folder / "state", name, self.app)
        self.made.append(cell)
        return cell

    def finish(self) -> None:
        for cell in self.made:
            cell.kill_everything()
        for cell in self.made:  # every replica process the test ever saw is gone
            for pid in cell.pids_seen:
                wait_for(f"replica process {pid} to end", lambda pid=pid: not runs_app(pid), 5)
        assert_no_processes_left(self.folder)


def write_app(folder: Path, code: str = APP) -> Path:
    """A folder with `code` as its server.py: what a cell's service runs."""
    folder.mkdir(parents=True)
    (folder / "server.py").write_text(code)
    return folder


class Poller(threading.Thread):
    """Asks a service port for an answer, over and over, and keeps count."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.halt = threading.Event()
        self.answers: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.answers.append(get(self.host, self.port, timeout=5))
            except (OSError, http.client.HTTPException, AssertionError) as exc:
                self.failures.append(f"{time.monotonic():.3f} {type(exc).__name__}: {exc}")
            time.sleep(0.005)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


def pod_views(pods: list[dict[str, Any]]) -> list[PodView]:
    return [PodView(p["hash"], p["ready"], p["restarts"], p["state"] == "waiting") for p in pods]
