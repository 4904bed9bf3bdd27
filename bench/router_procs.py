"""The processes bench/router.py measures: a toy cell, HAProxy, the embedded router; and
how much CPU a process has used."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cellops.router.engines import haproxy_config, haproxy_map
from cellops.tenancy.table import RoutingTable
from router_load import start_cell

CELLOPS = Path(sys.executable).with_name("cellops")


def wait_port(port: int, proc: subprocess.Popen[str]) -> None:
    import socket

    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toy_cell(folder: Path) -> tuple[subprocess.Popen[str], int]:
    proc, port = start_cell(free_port, folder)
    wait_port(port, proc)
    return proc, port


def start_haproxy(folder: Path, table: RoutingTable) -> tuple[subprocess.Popen[str], int]:
    folder.mkdir()
    port = free_port()
    (folder / "tenants.map").write_text(haproxy_map(table))
    config = haproxy_config(
        table, f"127.0.0.1:{port}", str(folder / "tenants.map"), str(folder / "haproxy.sock")
    )
    (folder / "haproxy.cfg").write_text(config)
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(folder / "haproxy.cfg")], text=True)
    wait_port(port, proc)
    return proc, port


def start_router(table_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            str(CELLOPS),
            "router",
            "run",
            "--table",
            str(table_path),
            "--listen",
            "127.0.0.1:0",
            *list(extra),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.split("http://127.0.0.1:")[1].split()[0])


def cpu_seconds(pid: int) -> float:
    """CPU time a process (all its threads) has used: user + system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
