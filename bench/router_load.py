"""The bench's bounded load generator and its toy cell (helpers of bench/router.py).

`fixed_rate`: an open loop at a set rate (latency measured from each request's scheduled
send time, so a stalled server shows up as latency, not as fewer requests).
`closed_loop`: N workers back to back for a while: the rate a target sustains.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp

CELL = """
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


def start_cell() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", CELL], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


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
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000


async def _one(
    session: aiohttp.ClientSession, url: str, tenant: str, load: Load, t0: float
) -> None:
    try:
        async with session.get(url, headers={"X-Tenant-Id": tenant}) as response:
            await response.read()
            ok = response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    if ok:
        load.latencies.append(time.perf_counter() - t0)
    else:
        load.failures += 1


def client(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def fixed_rate(
    url: str,
    tenants: list[str],
    rate: int,
    seconds: float,
    *,
    session: aiohttp.ClientSession | None = None,
    load: Load | None = None,
) -> Load:
    """`session`, `load`: go on with those (turns of several targets, bench/router.py)."""
    load = Load() if load is None else load
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(client(256))
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tenant = tenants[i % len(tenants)]
            tasks.append(asyncio.create_task(_one(session, url, tenant, load, due)))
        await asyncio.gather(*tasks)
        load.seconds += time.perf_counter() - start
    return load


async def closed_loop(url: str, tenants: list[str], workers: int, seconds: float) -> Load:
    load = Load()
    end = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        i = n
        while time.perf_counter() < end:
            await _one(session, url, tenants[i % len(tenants)], load, time.perf_counter())
            i += workers

    async with client(workers) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(workers)))
        load.seconds = time.perf_counter() - start
    return load


if __name__ == "__main__":  # a knocking client in its own process: URL SECONDS RATE TENANT...
    print("ready", flush=True)  # imports done: its start costs no CPU during a measurement
    sys.stdin.readline()  # "go"
    done = asyncio.run(fixed_rate(sys.argv[1], sys.argv[4:], int(sys.argv[3]), float(sys.argv[2])))
    print(done.failures, len(done.latencies))
