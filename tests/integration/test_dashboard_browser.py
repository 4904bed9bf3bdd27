"""The dashboard in a real headless Chromium (Debian's, through its chromedriver) over a
real controller (`cellops up --listen`) and local cells: sign in with a token, watch a
rollout advance without reloading the page, pause it from the page, see a halted
rollout's reason, and a viewer's page with no operator buttons (the API refusing the
viewer's write too). With CELLOPS_SCREENSHOTS=DIR, each page is saved there as a PNG
(docs/screenshots/ was made so)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cellops.store.records import RolloutState
from tests.browserkit import MISSING, chromium
from tests.integration.controller_harness import Fleet, ServiceDef, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
SHOTS = os.environ.get("CELLOPS_SCREENSHOTS")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("dashboard")
    tag = hashlib.sha256(f"dashboard {root}".encode()).hexdigest()[:5]
    made = Fleet(
        root,
        f"d{tag}",
        [ServiceDef("web", 18095)],
        regions=("a", "b"),
        canary_bake="4s",
        rest_bake="1s",
    )
    made.start(extra=("--listen", "127.0.0.1:0"))
    try:
        made.wait_rollout(made.head, RolloutState.COMPLETED, timeout=90)
        yield made
    finally:
        leftovers = made.down()
        assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def token(fleet: Fleet, role: str) -> str:
    made = fleet.cli("token", "create", "--role", role, "--state-dir", fleet.state)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def sign_in(browser: Any, url: str, secret: str, page: str = "/") -> None:
    from selenium.webdriver.common.by import By

    browser.get(url + page)
    wait_for("the login page", lambda: "/login" in browser.current_url, 30)
    browser.find_element(By.ID, "token").send_keys(secret)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(f"{page} after signing in", lambda: browser.find_elements(By.ID, "whoami"), 30)


def text_of(browser: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, css)
    try:
        return " ".join(str(e.text) for e in found)
    except Exception:  # the live panel was swapped while read: read again next time
        return ""


def until(browser: Any, what: str, check: Callable[[], object], timeout: float = 90) -> None:
    try:
        wait_for(what, check, timeout, interval=0.2)
    except AssertionError:
        raise AssertionError(f"{what}; the page shows:\n{text_of(browser, 'main')}") from None


def shot(browser: Any, name: str) -> None:
    if SHOTS:  # the whole page, up to 2,000 pixels high
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(max(int(height), 600), 2000))
        browser.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
        browser.set_window_size(1280, 900)


def test_an_operator_watches_pauses_and_sees_a_halt_without_reloading(
    fleet: Fleet, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    url = str(fleet.record()["api"])
    browser.get(url + "/login")
    browser.find_element(By.ID, "token").send_keys("cellops_not-a-token")
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    until(browser, "the login refused", lambda: "unknown, revoked" in text_of(browser, ".error"))
    sign_in(browser, url, token(fleet, "operator"), "/rollout")
    assert browser.get_cookie("cellops_session")["httpOnly"] is True
    assert browser.get_cookie("cellops_session")["sameSite"] == "Strict"
    browser.execute_script("window.notReloaded = true")

    # a release rolls: the open page follows it wave by wave
    v2 = fleet.release("web", "v2")
    until(browser, "rollout #2 on the page", lambda: "Rollout #2" in text_of(browser, "h1"))
    until(
        browser,
        "the canary baking, counting down",
        lambda: "bake ends" in text_of(browser, "#countdown"),
    )
    shot(browser, "rollout-live")
    until(
        browser,
        "the rest wave current",
        lambda: "current" in text_of(browser, ".wave[data-wave=rest] .wstatus"),
    )
    until(
        browser, "the rollout completed", lambda: "completed" in text_of(browser, "#rollout-state")
    )
    assert fleet.rollout_of(v2).state is RolloutState.COMPLETED  # type: ignore[union-attr]
    assert browser.execute_script("return window.notReloaded") is True

    # the next one is paused from the page, then resumed
    v3 = fleet.release("web", "v3")
    until(browser, "rollout #3 with a pause button", lambda: _button(browser, "pause", v3[:12]))
    _button(browser, "pause", v3[:12]).click()
    until(browser, "paused on the page", lambda: "paused" in text_of(browser, "#rollout-state"))
    until(browser, "the pause in the store", lambda: fleet.rollout_of(v3).paused)  # type: ignore[union-attr]
    assert "paused by an operator" in text_of(browser, "#waiting")
    assert "rollout-pause" in [e.kind for e in fleet.events(rollout=fleet.rollout_of(v3).id)]  # type: ignore[union-attr]
    shot(browser, "rollout-paused")
    until(browser, "a resume button", lambda: _button(browser, "resume", v3[:12]))
    _button(browser, "resume", v3[:12]).click()
    until(browser, "v3 completed", lambda: "completed" in text_of(browser, "#rollout-state"))

    # a bad release halts at the canary: the page says why
    v4 = fleet.release("web", "v4", crash=True)
    until(browser, "v4 halted", lambda: "halted" in text_of(browser, "#rollout-state"), 120)
    halted = fleet.rollout_of(v4)
    assert halted is not None and halted.state is RolloutState.HALTED
    until(browser, "the halt's reason", lambda: halted.reason in text_of(browser, "#waiting"))
    assert browser.execute_script("return window.notReloaded") is True
    assert _button(browser, "retry", v4[:12]) is not None
    shot(browser, "rollout-halted")
    _pages(browser, url, fleet)


def _button(browser: Any, label: str, revision: str) -> Any:
    from selenium.webdriver.common.by import By

    if revision not in text_of(browser, "#rollout .meta"):
        return None
    found = browser.find_elements(By.CSS_SELECTOR, f"#actions button.act-{label}")
    return found[0] if found else None


def _pages(browser: Any, url: str, fleet: Fleet) -> None:
    """Every other page, as the operator sees it after the halt."""
    canary = next(c for c in fleet.cells if c.endswith("canary"))
    browser.get(url + "/")
    assert set(fleet.cells) <= set(text_of(browser, "#matrix").split())
    assert "canary" in text_of(browser, "#groups")
    shot(browser, "fleet")
    browser.get(url + "/revisions")
    assert "accepted" in text_of(browser, "#revisions")
    shot(browser, "revisions")
    browser.get(url + f"/cells/{canary}")
    assert fleet.address(canary) in text_of(browser, "#cell-facts")
    assert "listening on" in text_of(browser, "pre.log")  # the replicas' own output
    assert "rolled-back" in text_of(browser, "#cell-events") or "cell-failed" in text_of(
        browser, "#cell-events"
    )
    shot(browser, "cell")
    browser.get(url + "/events")
    first = text_of(browser, "#events tbody tr:first-child")
    fleet.cli("rollout", "retry", "--state-dir", fleet.state)  # a new event, while watching
    until(
        browser,
        "a new event live",
        lambda: text_of(browser, "#events tbody tr:first-child") != first,
    )
    shot(browser, "events")
    browser.get(url + "/dora?window=24h")
    assert browser.find_elements("css selector", "#dora-figures") and browser.find_elements(
        "css selector", "svg.chart rect"
    )
    shot(browser, "dora")


def test_a_viewer_sees_no_operator_buttons_and_cannot_write(fleet: Fleet, browser: Any) -> None:
    url = str(fleet.record()["api"])
    browser.get(url + "/rollout")
    assert "/login?next=%2Frollout" in browser.current_url  # signed out: the login page
    sign_in(browser, url, token(fleet, "viewer"), "/rollout")
    until(browser, "the rollout page", lambda: "Rollout #" in text_of(browser, "h1"))
    source = browser.page_source
    assert "data-action" not in source and "act-rollback" not in source
    assert not browser.find_elements("css selector", "button.act")
    shot(browser, "rollout-viewer")
    answer = browser.execute_async_script(
        """const done = arguments[0];
        fetch("/api/v1/rollout/pause", {method: "POST",
              headers: {"X-CellOps-Request": "dashboard"}})
          .then(r => r.json().then(body => done([r.status, body.detail])));"""
    )
    assert answer[0] == 403 and "needs the operator role" in answer[1]
