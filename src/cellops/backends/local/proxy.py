"""The cell's serving path: a process of its own per cell (in its own session) that serves
every service port on the cell's address and forwards each connection to a ready replica,
round robin, as kube-proxy does for a Service. Clients and the cell's other services use
`<cell address>:<service port>`.

It reads the ready endpoints from `endpoints.json` (the agent writes it) and reports its
listeners and the routes it applies in `proxy.json`. It holds the cell's address (see
ownership.py). It needs neither the agent nor the controller: it keeps serving the last
endpoints it read while they are gone, and a new agent adopts it.

    python -m cellops.backends.local.proxy --cell-root DIR --host 127.a.b.c
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

from cellops.backends.local import ownership
from cellops.backends.local.layout import CellPaths, cell_arguments, read_json, write_json
from cellops.backends.local.process import start_time

POLL = 0.5  # seconds between looks at endpoints.json (the agent's SIGUSR1 wakes it at once)
RETRY_BIND = 1.0  # seconds between attempts to listen on a port that could not be bound
CONNECT_TIMEOUT = 2.0
Endpoint = tuple[str, int]


class Proxy:
    def __init__(self, paths: CellPaths, host: str, lock: socket.socket) -> None:
        self.paths, self.host, self.lock = paths, host, lock
        self.routes: dict[int, list[Endpoint]] = {}  # service port -> ready endpoints
        self.servers: dict[int, asyncio.Server] = {}
        self.errors: dict[int, str] = {}  # service port -> why it is not served
        self.counters: dict[int, itertools.count[int]] = {}  # round robin per port
        self.stamp: tuple[int, int] | None = None
        self.retry_at = 0.0
        self.reported: dict[str, Any] | None = None
        self.dirty = True  # listeners or routes may differ from what proxy.json says
        self.stopping = False
        self.wake = asyncio.Event()
        self.me = {"pid": os.getpid(), "started": start_time(os.getpid()), "host": host}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        loop.add_signal_handler(signal.SIGUSR1, self.wake.set)  # new endpoints
        said = ownership.identity(self.paths.root, os.getpid())
        holding = await asyncio.start_unix_server(functools.partial(_answer, said), sock=self.lock)
        try:
            while not self.stopping and self.paths.root.is_dir():  # gone: the cell was deleted
                try:
                    await self._look()
                except Exception:  # a full disk, say: keep serving what is bound
                    traceback.print_exc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), POLL)
                self.wake.clear()
        finally:
            holding.close()
            for server in self.servers.values():
                server.close()

    def _stop(self) -> None:
        self.stopping = True
        self.wake.set()

    async def _look(self) -> None:
        """New endpoints, or a port to listen on again: apply them, and say so."""
        self.dirty |= self._read_endpoints()
        if self.dirty or (self.errors and time.monotonic() >= self.retry_at):
            await self._listen()
            self._report()
            self.dirty = False

    def _read_endpoints(self) -> bool:
        try:
            stat = self.paths.endpoints.stat()
        except FileNotFoundError:
            return False  # none yet, or removed: keep serving what we know
        stamp = (stat.st_ino, stat.st_mtime_ns)  # every write is a rename: a new inode
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        data = read_json(self.paths.endpoints)
        try:
            assert data is not None
            ports: dict[str, list[list[Any]]] = data["ports"]
            self.routes = {int(p): [(str(h), int(n)) for h, n in eps] for p, eps in ports.items()}
        except (AssertionError, KeyError, TypeError, ValueError, AttributeError):
            print(f"{_now()} ignoring a malformed endpoints.json", flush=True)
            return False
        return True

    async def _listen(self) -> None:
        for port in list(self.servers):
            if port not in self.routes:
                self.servers.pop(port).close()
        for port in list(self.errors):
            if port not in self.routes:
                del self.errors[port]
        retry, now = False, time.monotonic()
        for port in self.routes:
            if port in self.servers or (port in self.errors and now < self.retry_at):
                continue
            try:
                self.servers[port] = await asyncio.start_server(
                    functools.partial(self._forward, port), self.host, port, reuse_address=True
                )
            except OSError as exc:  # in use, or the address is not there: reported, retried
                why = f"failed: cannot listen on {self.host}:{port}: {exc.strerror or exc}"
                if self.errors.get(port) != why:
                    print(f"{_now()} {why}", flush=True)
                self.errors[port] = why
                retry = True
            else:
                self.errors.pop(port, None)
        if retry:
            self.retry_at = now + RETRY_BIND

    def _report(self) -> None:
        """Write proxy.json when what it serves changed: the agent counts a replica as
        serving only once it is routed here."""
        report = {
            **self.me,
            "listeners": {
                str(p): "bound" if p in self.servers else self.errors.get(p, "waiting: not yet")
                for p in self.routes
            },
            "routes": {str(p): self.routes[p] for p in self.servers},
        }
        if report != self.reported:
            write_json(self.paths.proxy, report)
            self.reported = report

    async def _forward(
        self, port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        targets = list(self.routes.get(port, []))
        upstream = None
        if targets:
            start = next(self.counters.setdefault(port, itertools.count()))
            for i in range(len(targets)):
                host, target = targets[(start + i) % len(targets)]
                with contextlib.suppress(OSError, TimeoutError):
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(host, target), timeout=CONNECT_TIMEOUT
                    )
                    break
        if upstream is None:
            client_w.close()
            return
        up_r, up_w = upstream
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            for writer in (client_w, up_w):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction. At its end of stream, half-close the other side and leave the
    opposite direction open (a client that shuts down its writing still gets its answer);
    on an error, close the other side so the opposite direction ends too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _answer(said: bytes, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Tell whoever asks who holds the address."""
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(said)
        await writer.drain()
    writer.close()


def _now() -> str:
    return time.strftime("%H:%M:%S")


def main() -> None:
    paths, host = cell_arguments(__doc__.splitlines()[0])
    me = {"pid": os.getpid(), "started": start_time(os.getpid()), "host": host}
    try:
        lock = ownership.claim(host)
    except ownership.AddressTaken as exc:
        refusal = f"cell {paths.root.name}: {exc}"
        write_json(paths.proxy, {**me, "refused": refusal, "listeners": {}, "routes": {}})
        print(f"{_now()} {refusal}; exiting", flush=True)
        sys.exit(3)
    print(f"{_now()} serving {host} for {paths.root}", flush=True)
    asyncio.run(Proxy(paths, host, lock).run())


if __name__ == "__main__":
    main()
