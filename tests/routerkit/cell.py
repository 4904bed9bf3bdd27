"""A toy cell: answers every request with its name, the path and the tenant header.

`python -m tests.routerkit.cell NAME [PORT]` prints `port N` once listening on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def main(name: str, port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        tenant = request.headers.get("X-Tenant-Id", "")
        return web.Response(text=f"{name} {request.path} {tenant}\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
