"""Debian's `docker-registry` on 127.0.0.1, for the containers demo, the tests and the
benchmarks: its storage in a folder of theirs, served until the block ends."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL = "docker-registry is not installed (Debian: apt-get install docker-registry)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def registry_config(folder: Path, port: int) -> str:
    """The registry's configuration: storage in `folder`, 127.0.0.1:`port`, deletes on."""
    return (
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'blobs'}}},"
        " delete: {enabled: true}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )


@contextmanager
def serve_registry(folder: Path, config: Path, port: int) -> Iterator[str]:
    """docker-registry serving `config` (on `port`) until the block ends; its host:port.
    FileNotFoundError (saying what to install) without it; RuntimeError, with its log,
    when it does not listen within 30 s."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise FileNotFoundError(INSTALL)
    with (folder / "registry.log").open("w") as log:
        server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((folder / "registry.log").read_text()) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)
