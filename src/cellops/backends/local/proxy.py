"""The cell's service ports: a TCP proxy per service port on the cell's address that
forwards each connection to a ready replica (round robin), as kube-proxy does for a
Service. Clients and other services of the cell use `<cell address>:<service port>`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading


class ServiceProxies:
    def __init__(self, host: str) -> None:
        self._host = host
        self._backends: dict[int, list[int]] = {}  # service port -> ready replica ports
        self._servers: dict[int, asyncio.base_events.Server] = {}
        self._counters: dict[int, itertools.count[int]] = {}  # round robin per service port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._thread.start()

    def update(self, backends: dict[int, list[int]]) -> None:
        """Set the ready replica ports behind each service port; open or close listeners."""
        future = asyncio.run_coroutine_threadsafe(self._update(dict(backends)), self._loop)
        future.result(timeout=5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._update({}), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _update(self, backends: dict[int, list[int]]) -> None:
        self._backends = backends
        for port in list(self._servers):
            if port not in backends:
                self._servers.pop(port).close()
        for port in backends:
            if port not in self._servers:
                with contextlib.suppress(OSError):  # in use: reported by the missing listener
                    self._servers[port] = await asyncio.start_server(
                        functools.partial(self._forward, port), self._host, port
                    )

    async def _forward(
        self, port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        targets = list(self._backends.get(port, []))
        upstream = None
        if targets:
            start = next(self._counters.setdefault(port, itertools.count()))
            for i in range(len(targets)):
                target = targets[(start + i) % len(targets)]
                with contextlib.suppress(OSError):
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(self._host, target), timeout=2
                    )
                    break
        if upstream is None:
            client_w.close()
            return
        up_r, up_w = upstream
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
