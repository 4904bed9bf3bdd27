"""Where a local cell keeps its state, and the atomic file writes its parts talk through.

The controller writes `desired.json`; the cell agent reads it, runs the replicas and
writes `status.json`. Files survive either side restarting, like a kubelet's static pods.

    <root>/cells/<cell>/desired.json      what should run (written by the controller)
    <root>/cells/<cell>/status.json       what runs, and its health (written by the agent)
    <root>/cells/<cell>/agent.pid         the agent's pid, start time and address
    <root>/cells/<cell>/endpoints.json    ready replicas per service port (written by the agent)
    <root>/cells/<cell>/proxy.json        the proxy's pid, listeners and routes (by the proxy)
    <root>/cells/<cell>/replicas/*.json   one record per replica process (pid, ports, version)
    <root>/cells/<cell>/logs/<service>/   bounded stdout/stderr of each replica
    <root>/apps/<tree id>/                immutable copies of services' app/ folders
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellops.atomic import write_atomic


@dataclass(frozen=True)
class CellPaths:
    root: Path

    @property
    def desired(self) -> Path:
        return self.root / "desired.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def pidfile(self) -> Path:
        return self.root / "agent.pid"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def proxy(self) -> Path:
        return self.root / "proxy.json"

    @property
    def proxy_log(self) -> Path:
        return self.root / "proxy.log"

    @property
    def replicas(self) -> Path:
        return self.root / "replicas"

    def logs(self, service: str) -> Path:
        return self.root / "logs" / service


def cell_arguments(description: str) -> tuple[CellPaths, str]:
    """The command line of a cell's agent and proxy: `--cell-root DIR --host ADDRESS`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cell-root", type=Path, required=True)
    parser.add_argument("--host", required=True)
    args = parser.parse_args()
    return CellPaths(args.cell_root), str(args.host)


def cell_paths(state_root: Path, cell: str) -> CellPaths:
    return CellPaths(state_root / "cells" / cell)


def app_dir(state_root: Path, tree_id: str) -> Path:
    return state_root / "apps" / tree_id


def write_json(path: Path, data: object) -> None:
    """Write atomically: readers see the old file or the new one, never half of one."""
    write_atomic(path, json.dumps(data, separators=(",", ":"), sort_keys=True).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
