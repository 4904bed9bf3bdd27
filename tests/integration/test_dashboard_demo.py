"""`cellops demo --keep` as a new user runs it, watched in a real headless Chromium: the
demo prints the dashboard's address and a viewer token; signed in with it, one open
page follows the good release and then the bad one halting at the canary, without a
reload; after the demo, the dashboard is still served (a detached controller) until
`cellops down`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browserkit import MISSING, chromium
from tests.integration.controller_harness import CELLOPS, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


class Demo:
    """`cellops demo --keep` in the background, its output collected line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [CELLOPS, "demo", "--keep"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, pattern: str) -> re.Match[str] | None:
        return next((m for line in list(self.lines) if (m := re.search(pattern, line))), None)

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])


def text_of(browser: Any, css: str) -> str:
    try:
        return " ".join(str(e.text) for e in browser.find_elements("css selector", css))
    except Exception:  # swapped while read: read again on the next look
        return ""


def test_a_new_user_watches_the_demo_in_the_browser_and_keep_leaves_it_up() -> None:
    demo = Demo()
    kept: re.Match[str] | None = None
    try:
        address = wait_for("the dashboard's address", lambda: demo.said(r"Dashboard: (\S+)/ "), 120)
        viewer = wait_for("a viewer token", lambda: demo.said(r"viewer token:\s+(\S+)"), 30)
        url, token = address.group(1), viewer.group(1)
        with chromium() as browser:
            browser.get(url + "/rollout")
            browser.find_element("id", "token").send_keys(token)
            browser.find_element("css selector", "#login button[type=submit]").click()
            wait_for("the rollout page", lambda: browser.find_elements("id", "whoami"), 30)
            browser.execute_script("window.notReloaded = true")
            seen: set[str] = set()

            def halted() -> bool:
                seen.add(text_of(browser, "#rollout h1"))
                return "Rollout #3 halted" in text_of(browser, "#rollout h1")

            try:
                wait_for("the bad release halted on the page", halted, 400, interval=0.2)
            except AssertionError:
                raise AssertionError(f"seen {seen}; the demo said:\n{demo.output}") from None
            assert any("Rollout #2" in s for s in seen), seen  # the good release, rolling
            assert "failed in the canary wave" in text_of(browser, "#waiting")
            assert browser.execute_script("return window.notReloaded") is True
            assert not browser.find_elements("css selector", "button.act")  # a viewer's page
        assert demo.process.wait(timeout=300) == 0, demo.output
        kept = demo.said(r"Repo: (\S+); state: (\S+)")
        assert kept is not None, demo.output
        assert demo.said(r"cellops down ") is not None  # says how to stop it
        after = wait_for(
            "the kept dashboard", lambda: demo.said(r"Dashboard: (\S+)/ ") and _up(demo), 30
        )
        fleet = requests.get(
            f"{after}/api/v1/fleet", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert fleet.status_code == 200 and fleet.json()["cells"] == 6
    finally:
        if demo.process.poll() is None:  # interrupted, the demo leaves its fleet and says where
            demo.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.process.wait(timeout=120)
            if demo.process.poll() is None:
                demo.process.kill()
        kept = kept or demo.said(r"Repo: (\S+); state: (\S+)")
        if kept is not None:
            repo, state = kept.group(1), kept.group(2)
            subprocess.run([CELLOPS, "down", repo, "--state-dir", state], timeout=120, check=False)
            with contextlib.suppress(OSError):
                shutil.rmtree(Path(state).parent)


def _up(demo: Demo) -> str | None:
    """The last dashboard address the demo printed, once it answers."""
    found = [m.group(1) for line in demo.lines if (m := re.search(r"Dashboard: (\S+)/ ", line))]
    try:
        healthy = requests.get(found[-1] + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return None
    return found[-1] if healthy else None
