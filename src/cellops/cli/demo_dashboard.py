"""The demo's dashboard: the API, the push webhook and the dashboard on one listener over
the demo's store (127.0.0.1:8470, or any free port when that one is taken), with a viewer
and an operator token made for it and printed. With `--keep`, a detached controller
(`cellops up --listen`) takes over on the same address when the demo ends, so the page
stays up until `cellops down`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellops.cli.output import console
from cellops.model.errors import StartupError

if TYPE_CHECKING:
    from cellops.controller.loop import ControllerLoop
    from cellops.wiring import Wiring

PORT = 8470  # the port the docs name for --listen


class DemoDashboard:
    def __init__(self, wiring: Wiring, loop: ControllerLoop, secret: str) -> None:
        self.wiring, self.loop, self.secret = wiring, loop, secret
        self.server: tuple[Any, Any, str] | None = None
        self.url = ""
        self.tokens: dict[str, str] = {}

    def start(self) -> int:
        """Serve, make the tokens and say where; the port."""
        from cellops.api.serve import ListenOptions
        from cellops.cli.controller import _listen
        from cellops.store.tokens import Role

        for port in (PORT, 0):
            options = ListenOptions("127.0.0.1", port, what="the demo's dashboard")
            try:
                self.server = _listen(self.wiring, self.loop, self.secret, options, ())
                self.url = self.server[2]
                break
            except StartupError:
                if port == 0:
                    raise
        for role in (Role.VIEWER, Role.OPERATOR):
            _, self.tokens[role] = self.wiring.store.create_token(
                f"demo-{role}-{int(time.time())}", role, time.time()
            )
        self.say()
        return int(self.url.rsplit(":", 1)[1])

    def say(self) -> None:
        console.print(
            f"Dashboard: {self.url}/  (sign in with a token)\n"
            f"  viewer token:   {self.tokens['viewer']}\n"
            f"  operator token: {self.tokens['operator']}  (pause, abort, approve, rollback)",
            markup=False,
            soft_wrap=True,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server[0].stop()
            self.server[1].close()
            self.server = None

    def keep(self, repo: Path, state: Path) -> None:
        """A detached controller serving the dashboard where the demo's was (or on any
        free port when the old one is not free yet); the tokens stay valid."""
        from cellops.controller import process
        from cellops.model.errors import StoreError

        args = ["up", str(repo), "--state-dir", str(state), "--no-view", "--log-format", "json"]
        for listen in (self.url.removeprefix("http://"), "127.0.0.1:0"):
            try:
                process.spawn_detached([*args, "--listen", listen], state)
                break
            except StoreError as exc:
                said = str(exc)
        else:
            console.print(f"✗ the controller did not start again: {said}", markup=False)
            return
        self.url = str((process.read_record(state) or {}).get("api", self.url))
        console.print(
            f"\nThe fleet, its controller and the dashboard keep running. Repo: {repo};"
            f" state: {state}",
            markup=False,
            soft_wrap=True,
        )
        self.say()
        console.print(
            f"  cellops status {repo} --state-dir {state}\n"
            f"  cellops down {repo} --state-dir {state}   (stops the controller and the cells)",
            markup=False,
            soft_wrap=True,
        )
