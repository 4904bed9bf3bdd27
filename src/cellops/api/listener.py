"""One HTTP(S) listener on a background thread: the API, the webhook and later the
dashboard and /metrics share it.

The socket is bound before the server starts, so a port in use, out of range or a bad
address is one clear `StartupError` naming the option to change. At most `limit`
requests are served at once (503 beyond), so that a flood holds a bounded number of
request bodies; a client slow to send its request is closed (`guard.py`)."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from cellops.api.guard import HEADER_TIMEOUT, InFlight, guarded
from cellops.model.errors import StartupError

MAX_CONNECTIONS = 64


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6, `:PORT` for 127.0.0.1); ValueError naming
    what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8470")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"{option} {text!r}: port {number} is out of range (0 to 65535)")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(part.isalnum() or "-" in part for part in host.split(".")):
            raise ValueError(
                f"{option} {text!r}: {host!r} is not an address or host name"
            ) from None
    return host, number


class Listener:
    """`app` served on `host:port` (port 0: any free one), with TLS when given a
    certificate and its key."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        option: str = "--listen",
        what: str = "the controller's listener",
        tls: tuple[Path, Path] | None = None,
        limit: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self.option, self.what, self.tls = option, what, tls
        if tls is not None:
            for path in tls:
                if not path.is_file():
                    raise StartupError(f"cannot read the TLS file {path}: no such file")
        config = uvicorn.Config(
            InFlight(app, limit),
            http=guarded(header_timeout),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # a URL may carry what must not be logged
            lifespan="off",
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="listener", daemon=True)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def start(self, timeout: float = 10) -> int:
        """Listen and serve on a thread; the port it listens on."""
        host, port = self._server.config.host, self._server.config.port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listening = socket.create_server((host, port), family=family)
        except (OSError, OverflowError) as exc:
            raise StartupError(
                f"{self.what} cannot listen on {host}:{port} ({_reason(exc)}): choose another"
                f" {self.option} port, or 0 for any free one"
            ) from None
        try:
            self._server.config.load()  # TLS files are read here: a bad one is one error
        except Exception as exc:
            listening.close()
            raise StartupError(f"cannot serve TLS with {self.tls}: {exc}") from None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listening]}, name="listener", daemon=True
        )
        self._thread.start()
        waited = 0.0
        while not self._server.started and waited < timeout and self._thread.is_alive():
            self._thread.join(0.02)
            waited += 0.02
        if not self._server.started:
            raise StartupError(f"{self.what} on {host}:{port} did not start in {timeout:.0f}s")
        return int(listening.getsockname()[1])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc)
