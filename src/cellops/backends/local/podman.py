"""Podman as local cells use it: one storage per state folder, runc, and what every podman
command of a fleet shares.

    <state>/podman/containers.conf   runc, cgroupfs, no default ulimits (runc refuses the
                                     ones Debian's podman sets: "error setting rlimit"),
                                     locks as files in tmp/ (not the machine's one
                                     shared memory segment)
    <state>/podman/storage.conf      vfs storage in <state>/podman/storage, runroot run/
    <state>/podman/auth/<host>.json  a registry's credentials (Docker config.json format), 0600
    <state>/podman/certs/ca.crt      the CAs registries are checked against, when given

Two fleets (or two test runs) never share images, containers or locks. Containers are
named `cellops-<fleet id>-<cell>-<replica id>` (the replica id holds the service and its
version) and labelled with the same, so an agent finds its cell's containers again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellops.atomic import write_atomic
from cellops.backends.local.apps import fleet_id
from cellops.model.problems import Problem
from cellops.spec.cell import LocalBackend

if TYPE_CHECKING:  # the check's types only: reading a cell never loads the pipeline
    from cellops.pipeline import Check
    from cellops.render import DesiredFleet
    from cellops.spec.revision import Revision

INSTALL = "install podman and runc (Debian: apt-get install podman runc)"
TOOLS = ("podman", "runc")
LABEL = "dev.cellops"
TIMEOUT = 60.0


def missing_tools(path: str | None = None) -> list[str]:
    """The container tools not found on `path` (default: $PATH and the sbin folders, where
    Debian puts runc)."""
    if path is None:
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return [tool for tool in TOOLS if shutil.which(tool, path=path) is None]


def podman_check(path: str | None = None) -> Check:
    """A revision that runs containers in local cells is refused on a machine without
    podman and runc, naming each such cell and what to install (`path`: where to look,
    default $PATH)."""

    def check(revision: Revision, desired: DesiredFleet) -> list[Problem]:
        problems = []
        missing: list[str] | None = None
        for name, cell in sorted(desired.cells.items()):
            if not isinstance(cell.spec.backend, LocalBackend):
                continue
            images = sorted(s for s, d in cell.services.items() if d.spec.run is None)
            if not images:
                continue
            missing = missing_tools(path) if missing is None else missing
            if missing:
                message = (
                    f"cell {name} runs {', '.join(images)} as containers, but"
                    f" {' and '.join(missing)} cannot be found on this machine: {INSTALL}"
                )
                problems.append(Problem(f"cells/{name}.yaml", None, "spec.backend", message))
        return problems

    return check


@dataclass(frozen=True)
class Podman:
    state_root: Path

    @property
    def root(self) -> Path:
        return self.state_root / "podman"

    @property
    def fleet(self) -> str:
        return fleet_id(self.state_root)

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin") + ":/usr/sbin:/sbin",
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
            "HOME": str(self.root),
        }

    def configure(self) -> None:
        """Write the configuration every podman command of this state folder reads."""
        containers = (
            "[containers]\ndefault_ulimits = []\n"
            '[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n'
            f'events_logger = "file"\ntmp_dir = "{self.root / "tmp"}"\nlock_type = "file"\n'
        )
        storage = (
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root / "storage"}"\n'
            f'runroot = "{self.root / "run"}"\n'
        )
        _keep(self.root / "containers.conf", containers.encode())
        _keep(self.root / "storage.conf", storage.encode())

    def write_credentials(self, host: str, token: str | None) -> Path | None:
        """`host`'s credentials (base64 user:password) as a podman auth file of its own,
        0600 (None: no credentials for it)."""
        path = self.root / "auth" / f"{host.replace(':', '_').replace('/', '_')}.json"
        if token is None:
            path.unlink(missing_ok=True)
            return None
        _keep(path, json.dumps({"auths": {host: {"auth": token}}}).encode())
        return path

    def write_ca(self, bundle: Path | None) -> Path | None:
        """The CA bundle registries are checked against (None: the system's)."""
        if bundle is None:
            shutil.rmtree(self.certs, ignore_errors=True)
            return None
        _keep(self.certs / "ca.crt", bundle.read_bytes())
        return self.certs

    def name(self, cell: str, replica: str) -> str:
        return f"cellops-{self.fleet}-{cell}-{replica}"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def containers(self, cell: str) -> list[str]:
        """Names of the cell's containers, running or not (none without podman)."""
        if not (self.root / "storage.conf").exists() or missing_tools():
            return []
        filters = [f"--filter=label={LABEL}.fleet={self.fleet}"]
        filters.append(f"--filter=label={LABEL}.cell={cell}")
        found = self.command("ps", "--all", *filters, "--format", "{{.Names}}")
        return found.stdout.split() if found.returncode == 0 else []

    def remove(self, names: list[str]) -> None:
        """Remove these containers at once, running or not; gone ones are no error."""
        if names:
            self.command("rm", "--force", "--ignore", "--time", "0", *names)


def _keep(path: Path, data: bytes) -> None:
    """`path` holds `data` (0600, folders 0700): rewritten only when it differs, and then
    whole (a pull reading it meanwhile sees the old file or the new one)."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return
    write_atomic(path, data, folder_mode=0o700)
