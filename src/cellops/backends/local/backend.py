"""The local backend, controller side: start and supervise cell agents, hand them their
desired state, read back what they observe."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cellops import failpoint
from cellops.backends.base import CellObservation
from cellops.backends.local import isolation, ownership, process
from cellops.backends.local.isolation import Isolation
from cellops.backends.local.layout import CellPaths, cell_paths, read_json, write_json
from cellops.backends.local.observe import agent_alive, observe_cell
from cellops.backends.local.podman import Podman
from cellops.model.errors import BackendError
from cellops.render import DesiredCell, DesiredService
from cellops.render.hashing import canonical_json, content_hash
from cellops.spec.cell import LocalBackend

HUNG_AFTER = 15.0  # ... and before a live but silent agent is replaced
Exporter = Callable[[str, Path], None]  # (tree id, target folder)


class LocalCells:
    """Every local cell of a fleet, under one state root."""

    resync = 0.0  # a look is a few file reads: every drift pass

    def __init__(self, state_root: Path, export: Exporter) -> None:
        self.root = state_root
        self._export = export
        self._addresses: dict[str, str] = {}
        self._isolation = Isolation(state_root)
        self._podman = Podman(state_root)

    # -- CellBackend ----------------------------------------------------------------------
    def ensure(self, cell: DesiredCell) -> bool:
        """Start the cell's agent if it is not running, or replace it if it hangs or
        serves another address. Refused (BackendError) when another cell, of another fleet
        or state folder, holds the cell's address."""
        address = self._address(cell)
        self._addresses[cell.name] = address
        self._check_owner(cell.name, address)
        if self.agent_alive(cell.name):
            if not self._hung(cell.name) and self._agent_host(cell.name) in (address, None):
                return False
            self._kill_agent(cell.name)
        # its user, private folder and network rules before anything of it runs
        self._isolation.prepare(cell.name, address, reach=(address,))
        self._start_agent(cell.name, address)
        if not self.agent_alive(cell.name):
            self._check_owner(cell.name, address)  # it lost a race for the address
            raise BackendError(
                f"cell {cell.name}: its agent did not start; see"
                f" {cell_paths(self.root, cell.name).agent_log}",
                transient=True,
            )
        return True

    def _address(self, cell: DesiredCell) -> str:
        """The address a rendered cell carries; a cell stored before cells carried theirs
        keeps the one its agent was given."""
        backend = cell.spec.backend
        if not isinstance(backend, LocalBackend):
            raise BackendError(f"cell {cell.name} is not a local cell")
        if backend.address is not None:
            return backend.address
        given = (read_json(cell_paths(self.root, cell.name).desired) or {}).get("address")
        if not isinstance(given, str):
            raise BackendError(f"cell {cell.name} has no address: render it again")
        return given

    def _check_owner(self, cell: str, address: str) -> None:
        paths = cell_paths(self.root, cell)
        proxy = read_json(paths.proxy) or {}
        pid, started = int(proxy.get("pid", 0)), int(proxy.get("started") or 0)
        if proxy.get("host") == address and process.alive(pid, started):
            return  # the cell's own proxy serves it
        holder = ownership.holder(address)
        if holder is not None and not holder.is_cell(paths.root):
            raise BackendError(
                f"cell {cell}: address {address} is held by {holder.describe()}; stop that"
                " one (`cellops down` in its repo, or its --state-dir), or give this cell"
                " another spec.backend.address"
            )

    def _agent_host(self, cell: str) -> str | None:
        """The address the cell's agent serves (agents from before they recorded it: the
        address of the desired state they were given)."""
        paths = cell_paths(self.root, cell)
        host = (read_json(paths.pidfile) or {}).get("host")
        return host or (read_json(paths.desired) or {}).get("address")

    def _hung(self, cell: str) -> bool:
        """Alive but silent: no heartbeat for HUNG_AFTER seconds, and not just started."""
        paths = cell_paths(self.root, cell)
        status = read_json(paths.status) or {}
        record = read_json(paths.pidfile) or {}
        started = float(record.get("at", 0))
        last = max(float(status.get("heartbeat", 0)), started)
        return time.time() - last > HUNG_AFTER

    def _kill_agent(self, cell: str) -> None:
        record = read_json(cell_paths(self.root, cell).pidfile) or {}
        pid = int(record.get("pid", 0))
        if pid and self.agent_alive(cell):
            os.kill(pid, signal.SIGKILL)  # its replicas live on in their own sessions
            deadline = time.time() + 5
            while self.agent_alive(cell) and time.time() < deadline:
                time.sleep(0.02)

    def apply(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        address = self._addresses.get(cell.name) or self._address(cell)
        entries = {name: self._entry(cell, address, s, services) for name, s in services.items()}
        document = {"cell": cell.name, "address": address, "services": entries}
        applied = content_hash(canonical_json(document))
        paths = cell_paths(self.root, cell.name)
        current = read_json(paths.desired)
        if current is None or current.get("hash") != applied:
            write_json(paths.desired, {**document, "hash": applied})
        failpoint.hit("apply.local")
        return applied

    def observe(self, cell: str) -> CellObservation:
        return observe_cell(self.root, cell)

    def delete(self, cell: str) -> None:
        self.stop(cell, workloads=True)
        shutil.rmtree(cell_paths(self.root, cell).root, ignore_errors=True)

    def close(self) -> None:
        """Nothing to release: agents and replicas keep running without the controller."""

    # -- agents ---------------------------------------------------------------------------
    def agent_alive(self, cell: str) -> bool:
        return agent_alive(self.root, cell)

    def stop(self, cell: str, workloads: bool, timeout: float = 15.0) -> None:
        """Stop a cell's agent; with `workloads`, first empty the cell and wait for it."""
        paths = cell_paths(self.root, cell)
        if workloads and self.agent_alive(cell):
            write_json(paths.desired, {"cell": cell, "services": {}, "hash": "empty"})
            deadline = time.time() + timeout
            while time.time() < deadline:
                status = read_json(paths.status) or {}
                if status.get("applied") == "empty" and not status.get("stray"):
                    break
                time.sleep(0.1)
        record = read_json(paths.pidfile)
        if record is not None and self.agent_alive(cell):
            os.kill(int(record["pid"]), signal.SIGTERM)
            deadline = time.time() + timeout
            while self.agent_alive(cell) and time.time() < deadline:
                time.sleep(0.05)
        if workloads:  # whatever is left (an agent that was already dead): stop it by record
            for replica_file in paths.replicas.glob("*.json"):
                data = read_json(replica_file) or {}
                process.kill_group(int(data.get("pid", 0)), int(data.get("started", 0)))
                replica_file.unlink(missing_ok=True)
            _stop_proxy(paths, timeout)
            self._podman.remove(self._podman.containers(cell))
            self._isolation.forget(cell)  # nothing of it runs: its user and rules go

    def _start_agent(self, cell: str, address: str) -> None:
        paths = cell_paths(self.root, cell)
        paths.root.mkdir(parents=True, exist_ok=True)
        with open(paths.agent_log, "ab") as log:
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cellops.backends.local.agent",
                    "--cell-root",
                    str(paths.root),
                    "--host",
                    address,
                ],
                env=process.agent_env(self.root),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.time() + 10
        while not self.agent_alive(cell) and time.time() < deadline:
            time.sleep(0.02)

    # -- desired state --------------------------------------------------------------------
    def _entry(
        self,
        cell: DesiredCell,
        address: str,
        service: DesiredService,
        services: Mapping[str, DesiredService],
    ) -> dict[str, Any]:
        spec = service.spec
        env = {**spec.env, **(spec.run.env if spec.run is not None else {})}
        for dep in service.depends_on:
            if dep in services and services[dep].spec.ports:
                env[f"{dep.upper().replace('-', '_')}_URL"] = (
                    f"http://{address}:{services[dep].spec.ports[0].port}"
                )
        env.update(
            {
                "CELLOPS_CELL": cell.name,
                "CELLOPS_SERVICE": service.name,
                "CELLOPS_REVISION": service.revision,
            }
        )
        entry = {
            "hash": service.hash,
            "revision": service.revision,
            "replicas": spec.replicas or 0,
            "env": env,
            "ports": [{"name": p.name, "port": p.port} for p in spec.ports],
            "probes": spec.probes.model_dump(mode="json", by_alias=True, exclude_none=True),
            "strategy": spec.strategy.model_dump(mode="json", by_alias=True),
        }
        if spec.run is None:  # an image and no app/: containers
            from cellops.backends.local.containers import container_entry  # TLS, registries

            return entry | container_entry(self._podman, service.name, spec)
        relative = Path(spec.run.cwd).relative_to("app")
        code = self._app(service)
        return entry | {"command": spec.run.command, "cwd": str(code / relative)}

    def _app(self, service: DesiredService) -> Path:
        assert service.code is not None, f"{service.name} has no app/ folder"
        code = service.code
        target = isolation.app_dir(self.root, code)  # cells' users must be able to read it
        if not target.is_dir():
            isolation.publish(self.root, target, lambda there: self._export(code, there))
        return target


def _stop_proxy(paths: CellPaths, timeout: float) -> None:
    """Stop the cell's proxy (its listeners close, its address is free again)."""
    record = read_json(paths.proxy) or {}
    pid, started = int(record.get("pid", 0)), int(record.get("started") or 0)
    if not process.alive(pid, started):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while process.alive(pid, started) and time.time() < deadline:
        time.sleep(0.02)
    if process.alive(pid, started):
        os.kill(pid, signal.SIGKILL)
