"""A tiny live fleet for the controller's integration tests.

Real pieces only: a Git fleet repo (pygit2), the real `cellops up` console script as a
subprocess, real cell agents and replica processes (a ~20-line stdlib HTTP server), the
real store read from the test. Every wait has a deadline; `Fleet.down()` runs the real
`cellops down` and then kills whatever still refers to the fleet's state folder, reporting
it so a test can fail on leaks.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cellops.backends.local.apps import apps_root
from cellops.backends.local.layout import cell_paths, read_json
from cellops.spec.cell import derived_address
from cellops.store.records import Event, LedgerRow, Rollout, RolloutState
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo

CELLOPS = shutil.which("cellops", path=str(Path(sys.executable).parent)) or "cellops"
# The replicas run the real interpreter directly (not a pyenv shim: ~10x faster to start),
# one every user can run: as root, cells run as their own users (root's home is private).
PYTHON = next(
    (
        p
        for p in (os.path.realpath(sys.executable), "/usr/bin/python3")
        if all(q.stat().st_mode & 0o001 for q in [*Path(p).parents, Path(p)])
    ),
    os.path.realpath(sys.executable),
)
DIGEST = "sha256:" + "5e" * 32

T = TypeVar("T")
Crash = bool | tuple[str, ...]

APP = '''\
"""{service}: answers GET / with its version, GET /healthz with 200. Standard library only."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "{version}"
{crash}

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {{"/": VERSION, "/healthz": "ok"}}.get(self.path)
        self.send_response(200 if body is not None else 404)
        data = (body or "not found").encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
print("{service}", VERSION, "listening on", os.environ["HOST"], os.environ["PORT"], flush=True)
server.serve_forever()
'''


@dataclass(frozen=True)
class ServiceDef:
    name: str
    port: int
    probes: bool = False  # a readiness http probe (period 1s); else running counts as ready


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_get(address: str, port: int, path: str = "/", timeout: float = 2.0) -> str | None:
    """The body of GET http://address:port/path, or None if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as r:
            return str(r.read().decode())
    except (OSError, urllib.error.HTTPError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


class Fleet:
    """A fleet repo of local cells, its state folder and (at most) one controller."""

    def __init__(
        self,
        root: Path,
        prefix: str,
        services: Iterable[ServiceDef],
        *,
        regions: tuple[str, ...] = ("a", "b", "b"),
        canary_bake: str = "300ms",
        rest_bake: str = "200ms",
        progress_deadline: str = "20s",
        max_concurrent: int = 1,
    ) -> None:
        self.root = root
        self.prefix = prefix
        self.services = {s.name: s for s in services}
        self.state = root / "state"
        self.repo = FleetRepo(root / "fleet", template=None)
        self.cells: dict[str, dict[str, str]] = {
            f"{prefix}-canary": {"ring": "canary", "region": "a"}
        }
        for index, region in enumerate(regions, start=1):
            self.cells[f"{prefix}-{region}{index}"] = {"ring": "main", "region": region}
        self.versions = dict.fromkeys(self.services, "v1")
        self.controller: subprocess.Popen[bytes] | None = None
        self._store: SqliteStore | None = None
        self._log = root / "controller.out"
        self.write_fleet(canary_bake, rest_bake, progress_deadline, max_concurrent)
        for service in self.services.values():
            self.write_service(service)
            self.write_app(service.name, "v1")
        self.head = self.first = self.repo.commit("v1 everywhere")

    # -- the fleet repo -------------------------------------------------------------------
    def write_fleet(
        self, canary_bake: str, rest_bake: str, progress_deadline: str, max_concurrent: int = 1
    ) -> None:
        self.repo.write(
            "cellops.yaml",
            textwrap.dedent(
                f"""\
                apiVersion: cellops.dev/v1
                kind: Fleet
                metadata:
                  name: {self.prefix}
                spec:
                  rollout:
                    waves:
                      - name: canary
                        selector: {{ring: canary}}
                        bake: {canary_bake}
                      - name: rest
                        percent: 100
                        maxConcurrent: {max_concurrent}
                        bake: {rest_bake}
                    failureBudget: 0
                    onFailure: rollback
                    progressDeadline: {progress_deadline}
                  imagePolicy:
                    requireDigest: true
                    allowedRegistries: [registry.example.com]
                  defaults:
                    replicas: 1
                """
            ),
        )
        for cell, labels in self.cells.items():
            label_lines = "".join(f"\n    {k}: {v}" for k, v in labels.items())
            self.repo.write(
                f"cells/{cell}.yaml",
                "apiVersion: cellops.dev/v1\nkind: Cell\nmetadata:\n"
                f"  name: {cell}\n  labels:{label_lines}\n"
                "spec:\n  backend: local\n  capacity:\n    maxTenants: 10\n",
            )

    def write_service(self, service: ServiceDef) -> None:
        probes = (
            "  probes:\n"
            "    readiness:\n"
            "      http: {path: /healthz, port: http}\n"
            "      periodSeconds: 1\n"
            "      failureThreshold: 3\n"
            if service.probes
            else ""
        )
        self.repo.write(
            f"services/{service.name}/service.yaml",
            "apiVersion: cellops.dev/v1\nkind: Service\nmetadata:\n"
            f"  name: {service.name}\n"
            "spec:\n"
            f"  image: registry.example.com/tests/{service.name}@{DIGEST}\n"
            "  run:\n"
            f"    command: [{PYTHON}, -I, -S, server.py]\n"
            "  replicas: 1\n"
            "  ports:\n"
            f"    - {{name: http, port: {service.port}}}\n" + probes,
        )

    def write_app(self, service: str, version: str, crash: Crash = False) -> None:
        """crash: True, the app exits at start everywhere; a tuple of cells, only there."""
        if isinstance(crash, tuple):
            crash_line = (
                f"if os.environ.get('CELLOPS_CELL') in {sorted(crash)!r}:\n"
                '    raise SystemExit("crashes at start in this cell")'
            )
        else:
            crash_line = 'raise SystemExit("crashes at start")' if crash else ""
        self.repo.write(
            f"services/{service}/app/server.py",
            APP.format(service=service, version=version, crash=crash_line),
        )

    def release(self, service: str, version: str, crash: Crash = False) -> str:
        """Commit a new version of `service`'s app; returns the commit id. A release that
        crashes (anywhere) does not become the service's expected version."""
        self.write_app(service, version, crash)
        if not crash:
            self.versions[service] = version
        self.head = self.repo.commit(f"{service} {version}")
        return self.head

    def commit(self, message: str) -> str:
        self.head = self.repo.commit(message)
        return self.head

    # -- the controller -------------------------------------------------------------------
    def start(
        self,
        *,
        poll: str = "0.2s",
        webhook_secret: str | None = None,
        wait: bool = True,
        extra: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """`cellops up`; `env`: more environment for it (e.g. a fail point)."""
        assert self.controller is None or self.controller.poll() is not None, "already running"
        args = [
            CELLOPS,
            "up",
            str(self.repo.path),
            "--state-dir",
            str(self.state),
            "--no-view",
            "--poll",
            poll,
        ]
        if webhook_secret is not None:
            args += ["--webhook", "0", "--webhook-secret", webhook_secret]
        args += extra
        environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
        environment.pop("CELLOPS_WEBHOOK_SECRET", None)
        with open(self._log, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(args[1:])}\n".encode())
            log.flush()
            self.controller = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        if wait:
            self.wait_ready()
        return self.controller

    def record(self) -> dict[str, Any]:
        return read_json(self.state / "controller.json") or {}

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        process = self.controller
        assert process is not None

        def ready() -> dict[str, Any] | None:
            if process.poll() is not None:
                raise AssertionError(
                    f"the controller exited with {process.returncode}:\n{self.controller_log()}"
                )
            record = self.record()
            return record if record.get("pid") == process.pid and record.get("ready") else None

        return wait_for("the controller to be ready", ready, timeout)

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 15.0) -> int | None:
        """Signal the running controller and wait for it to exit; its exit status."""
        process = self.controller
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.send_signal(sig)
        return process.wait(timeout=timeout)

    def stop_controller(self) -> int | None:
        return self.kill(signal.SIGTERM)

    @property
    def controller_running(self) -> bool:
        return self.controller is not None and self.controller.poll() is None

    def controller_log(self, lines: int = 40) -> str:
        try:
            text = self._log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no controller output)"
        return "\n".join(text[-lines:])

    def cli(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the real `cellops` console script."""
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        return subprocess.run(
            [CELLOPS, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    # -- shutting everything down ---------------------------------------------------------
    def processes(self) -> dict[int, str]:
        """Every live process that belongs to this fleet: the controller (its command line
        names the state folder), the agents (--cell-root) and replicas (cwd under it, or
        under the fleet's app copies when cells run as users of their own)."""
        marker = str(self.state)
        apps = str(apps_root(self.state)) + "/"
        found: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            if not cmdline:  # a zombie
                continue
            if f"{marker} " in f"{cmdline} " or marker + "/" in cmdline or cwd == marker:
                found[int(entry)] = cmdline
            elif cwd.startswith((marker + "/", apps)):
                found[int(entry)] = f"{cmdline} (cwd {cwd})"
        return found

    def down(self) -> dict[int, str]:
        """`cellops down`, then SIGKILL whatever is left; returns what was left."""
        try:
            done = self.cli("down", self.repo.path, "--state-dir", self.state, timeout=90)
            if done.returncode != 0:
                print("cellops down failed:", done.stdout, done.stderr)
        except subprocess.TimeoutExpired:
            print("cellops down timed out")
        if self.controller is not None and self.controller.poll() is None:
            self.controller.kill()
        if self.controller is not None:
            self.controller.wait(timeout=10)
        if self._store is not None:
            self._store.close()
            self._store = None
        # give processes a moment to finish exiting before calling them leftovers
        deadline = time.monotonic() + 3
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.processes()
        for pid in left:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return left

    # -- reading the store ----------------------------------------------------------------
    @property
    def store(self) -> SqliteStore:
        if self._store is None:
            self._store = SqliteStore(self.state / "cellops.db")
        return self._store

    def events(self, after: int = 0, **match: object) -> list[Event]:
        found = self.store.events(limit=1_000_000, after=after)
        return [e for e in found if all(getattr(e, k) == v for k, v in match.items())]

    def last_event_id(self) -> int:
        latest = self.store.events(limit=1)
        return latest[-1].id if latest else 0

    def rollouts_of(self, revision: str) -> list[Rollout]:
        return [r for r in self.store.rollouts(limit=10_000) if r.revision == revision]

    def rollout_of(self, revision: str) -> Rollout | None:
        found = self.rollouts_of(revision)
        return found[0] if found else None

    def wait_rollout(self, revision: str, state: RolloutState, timeout: float = 45.0) -> Rollout:
        """Wait for the rollout of `revision` to reach `state`; fail early on another end."""

        def reached() -> Rollout | None:
            rollout = self.rollout_of(revision)
            if rollout is None:
                return None
            if rollout.state is state:
                return rollout
            if rollout.state is not RolloutState.RUNNING:
                raise AssertionError(
                    f"rollout #{rollout.id} of {revision[:12]} ended {rollout.state}"
                    f" ({rollout.reason}), not {state}\n{self.describe()}"
                )
            return None

        try:
            return wait_for(f"the rollout of {revision[:12]} to be {state}", reached, timeout)
        except AssertionError as exc:
            if "timed out" in str(exc):
                raise AssertionError(f"{exc}\n{self.describe()}") from None
            raise

    def ledger(self, service: str) -> dict[str, LedgerRow]:
        return {r.cell: r for r in self.store.ledger_rows() if r.service == service}

    def describe(self, events: int = 40) -> str:
        """What happened lately, for failure messages."""
        lines = ["recent events:"]
        for e in self.store.events(limit=events):
            lines.append(f"  #{e.id} {e.kind:<18} rollout={e.rollout} cell={e.cell} {e.message}")
        lines.append("rollouts:")
        for r in self.store.rollouts(limit=5):
            lines.append(
                f"  #{r.id} {r.revision[:12]} {r.state} wave={r.wave} phase={r.phase}"
                f" paused={r.paused} {r.reason}"
            )
        lines.append("controller output:\n" + self.controller_log(20))
        return "\n".join(lines)

    # -- the cells ------------------------------------------------------------------------
    def address(self, cell: str) -> str:
        return derived_address(self.prefix, cell)  # the fleet is named after the prefix

    def status(self, cell: str) -> dict[str, Any]:
        return read_json(cell_paths(self.state, cell).status) or {}

    def desired_file(self, cell: str) -> Path:
        return cell_paths(self.state, cell).desired

    def agent_pid(self, cell: str) -> int:
        record = read_json(cell_paths(self.state, cell).pidfile) or {}
        return int(record.get("pid", 0))

    def pods(self, cell: str, service: str) -> list[dict[str, Any]]:
        services = self.status(cell).get("services", {})
        return list(services.get(service, {}).get("pods", []))

    def replica_pids(self) -> dict[tuple[str, str], list[int]]:
        return {
            (cell, service): sorted(int(p["pid"]) for p in self.pods(cell, service))
            for cell in self.cells
            for service in self.services
        }

    def get(self, cell: str, service: str, path: str = "/") -> str | None:
        return http_get(self.address(cell), self.services[service].port, path)

    def wait_serving(
        self, service: str, version: str, cells: Iterable[str] | None = None, timeout: float = 15
    ) -> None:
        """Every cell (of `cells`) answers GET / on the service port with `version`."""
        pending = list(cells if cells is not None else self.cells)
        answers: dict[str, str | None] = {}

        def all_serve() -> bool:
            for cell in list(pending):
                answers[cell] = self.get(cell, service)
                if answers[cell] == version:
                    pending.remove(cell)
            return not pending

        try:
            wait_for(f"{service} {version} to answer", all_serve, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(
                f"{service} should answer {version!r}; got {answers}\n{self.describe()}"
            ) from None


def applied_order(events: list[Event]) -> list[str]:
    return [e.cell for e in events if e.kind == "applied" and e.cell]


def count(events: list[Event], kind: str) -> collections.Counter[str | None]:
    return collections.Counter(e.cell for e in events if e.kind == kind)


def plan_cells(rollout: Rollout) -> list[list[str]]:
    """The cells of each wave of the rollout's plan (a typed plan record, or the list of
    wave dicts that earlier stores kept)."""
    waves: list[list[str]] = []
    for wave in rollout.plan:
        cells: Any = wave["cells"] if isinstance(wave, dict) else wave.cells
        waves.append([str(c["cell"] if isinstance(c, dict) else c.cell) for c in cells])
    return waves


def wave_name(rollout: Rollout, index: int) -> str:
    wave: Any = rollout.plan[index]
    return str(wave["name"] if isinstance(wave, dict) else wave.name)


def dump(data: object) -> str:
    return json.dumps(data, indent=1, default=str)
