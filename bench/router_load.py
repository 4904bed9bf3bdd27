"""The bench's bounded load generator and its toy cells (helpers of bench/router.py).

`fixed_rate`: an open loop at a set rate (latency measured from each request's scheduled
send time, so a stalled server shows up as latency, not as fewer requests).
`closed_loop`: N workers back to back for a while: the rate a target sustains.

The client is lean on purpose: keep-alive asyncio connections whose answers httptools
parses (no HTTP parsing here, only a GET's bytes). On two cores it shares the machine with
the cell and the proxy it measures; aiohttp's ClientSession cost several times its CPU per
request, and that CPU was taken from the targets being compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools

TIMEOUT = 30.0  # a request's whole time, connect included
PY_CELL = """
import asyncio, sys
from aiohttp import web
async def main():
    async def answer(request):
        return web.Response(text="ok\\n")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
NGINX = """daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{port} backlog=1024; keepalive_requests 1000000;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""


def start_cell(free_port: Callable[[], int], folder: Path) -> tuple[subprocess.Popen[str], int]:
    """A toy cell answering "ok": nginx as one process (SIGSTOP hangs it whole) when the
    machine has it, else a small aiohttp server. nginx adds the least noise of its own to
    the figures of what stands in front of it. `folder`: nginx's files (made here)."""
    if shutil.which("nginx") is None:
        proc = subprocess.Popen([sys.executable, "-c", PY_CELL], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        return proc, int(proc.stdout.readline())
    folder.mkdir(parents=True)
    port = free_port()
    (folder / "nginx.conf").write_text(NGINX.format(d=folder, port=port))
    conf = str(folder / "nginx.conf")
    args = ["nginx", "-c", conf, "-e", str(folder / "error.log"), "-p", str(folder)]
    return subprocess.Popen(args, text=True), port


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """This process's garbage collector off while it measures latency: a full collection of
    the load generator's heap (cellops and aiohttp imported, memory gone cold) held every
    request in flight up to 86 ms here, and was counted against whichever target had its
    turn. What exists is collected and frozen first; the collector runs again after."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def cold_memory(mib: int = 64, idle: float = 1.0) -> tuple[float, float]:
    """Milliseconds to write one byte of every page of `mib` MiB again at once, and after
    `idle` seconds asleep. On a machine whose host takes back an idle guest's memory (this
    one), the second is many times the first: what an idle process pays when work returns,
    and a floor under any tail latency measured here."""
    block = bytearray(mib << 20)

    def touch() -> float:
        start = time.perf_counter()
        for i in range(0, len(block), 4096):
            block[i] = 1
        return (time.perf_counter() - start) * 1000

    touch()
    hot = touch()
    time.sleep(idle)
    return hot, touch()


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=1000)[round(q * 10) - 1] * 1000


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(exc)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or ConnectionError("closed by the server"))

    def _end(self, exc: BaseException) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)


class Client:
    """Keep-alive connections to one target, at most `limit` at once (then requests wait)."""

    def __init__(self, url: str, limit: int = 256) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = (parts.path or "/").encode()
        self.idle: list[_Conn] = []
        self.slots = asyncio.Semaphore(limit)

    async def get(self, tenant: str) -> int:
        """The answer's status; raises when there is no whole answer."""
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            if conn is None or conn.closed:
                loop = asyncio.get_running_loop()
                _, conn = await loop.create_connection(_Conn, self.host, self.port)
            assert conn.transport is not None
            conn.done = asyncio.get_running_loop().create_future()
            conn.transport.write(
                b"GET %s HTTP/1.1\r\nHost: bench\r\nX-Tenant-Id: %s\r\n\r\n"
                % (self.path, tenant.encode())
            )
            try:
                status = await conn.done
            except BaseException:  # failed, timed out or cancelled: never reused
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.abort()
                raise
            conn.done = None
            if not conn.closed:
                self.idle.append(conn)
            elif conn.transport is not None:
                conn.transport.close()
            return status

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


async def _one(target: Client, tenant: str, load: Load, t0: float) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            ok = await target.get(tenant) == 200
    except (OSError, TimeoutError, httptools.HttpParserError):
        ok = False
    if ok:
        load.latencies.append(time.perf_counter() - t0)
    else:
        load.failures += 1


async def fixed_rate(
    url: str,
    tenants: list[str],
    rate: int,
    seconds: float,
    *,
    target: Client | None = None,
    load: Load | None = None,
) -> Load:
    """`target`, `load`: go on with those (turns of several targets, bench/router.py)."""
    load = Load() if load is None else load
    own = target is None
    target = Client(url) if target is None else target
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tenant = tenants[i % len(tenants)]
        tasks.append(asyncio.create_task(_one(target, tenant, load, due)))
    await asyncio.gather(*tasks)
    load.seconds += time.perf_counter() - start
    if own:
        target.close()
    return load


async def closed_loop(url: str, tenants: list[str], workers: int, seconds: float) -> Load:
    load = Load()
    end = time.perf_counter() + seconds
    target = Client(url, workers)

    async def worker(n: int) -> None:
        i = n
        while time.perf_counter() < end:
            await _one(target, tenants[i % len(tenants)], load, time.perf_counter())
            i += workers

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    load.seconds = time.perf_counter() - start
    target.close()
    return load


if __name__ == "__main__":  # a knocking client in its own process: URL SECONDS RATE TENANT...
    print("ready", flush=True)  # imports done: its start costs no CPU during a measurement
    sys.stdin.readline()  # "go"
    done = asyncio.run(fixed_rate(sys.argv[1], sys.argv[4:], int(sys.argv[3]), float(sys.argv[2])))
    print(done.failures, len(done.latencies))
