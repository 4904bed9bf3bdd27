"""The dashboard's pages over HTTP (a real uvicorn over a populated store): signed-out
pages send the browser to the login; a login sets an HttpOnly, SameSite=Strict cookie;
a viewer's pages carry no operator button; writes with the cookie need the dashboard's
header; a form from another site is refused; what a revision says is escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cellops.store.records import RevisionRecord
from tests.apikit import Api, serve

pytestmark = pytest.mark.slow
PAGES = ["/", "/rollout", "/rollouts/1", "/rollout/panel", "/revisions", "/cells/cell-0001"]
PAGES += ["/events", "/dora", "/dora?window=7d", "/?region=-&offset=2&limit=2"]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with serve(tmp_path) as served:
        yield served


def signed_in(api: Api, token: str) -> requests.Session:
    browser = requests.Session()
    answer = browser.post(
        api.url + "/login", data={"token": token, "next": "/rollout"}, allow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/rollout"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    return browser


@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_a_login_and_renders_for_a_viewer(api: Api, page: str) -> None:
    away = requests.get(api.url + page, allow_redirects=False, timeout=30)
    assert away.status_code == 303 and away.headers["location"].startswith("/login?next=%2F")
    shown = signed_in(api, api.viewer).get(api.url + page, timeout=30)
    assert shown.status_code == 200, shown.text
    assert "default-src 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["cache-control"] == "no-store"
    assert "data-action" not in shown.text  # a viewer is never shown a button
    assert not re.search(r'(src|href|action)="(https?:)?//', shown.text)  # nothing from elsewhere


def test_a_wrong_token_is_told_and_no_cookie_is_set(api: Api) -> None:
    answer = requests.post(api.url + "/login", data={"token": "cellops_nope"}, timeout=30)
    assert answer.status_code == 401 and "unknown, revoked or expired" in answer.text
    assert "set-cookie" not in answer.headers
    elsewhere = requests.post(
        api.url + "/login",
        data={"token": api.viewer, "next": "https://evil.example/"},
        allow_redirects=False,
        timeout=30,
    )
    assert elsewhere.headers["location"] == "/"  # never another site
    forged = requests.post(
        api.url + "/login",
        data={"token": api.viewer},
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_an_operator_sees_the_buttons_that_apply_and_a_viewer_none(api: Api) -> None:
    operator = signed_in(api, api.operator).get(api.url + "/rollout", timeout=30).text
    assert 'data-action="/api/v1/rollout/pause"' in operator
    assert 'data-action="/api/v1/rollout/approve"' in operator  # `rest` waits for approval
    assert 'data-action="/api/v1/rollback"' in operator  # the canary cell has the revision
    assert "data-action" not in signed_in(api, api.viewer).get(api.url + "/rollout").text


def test_writes_with_the_cookie_need_the_dashboards_header(api: Api) -> None:
    operator = signed_in(api, api.operator)
    forged = operator.post(api.url + "/api/v1/rollout/pause", timeout=30)
    assert forged.status_code == 403 and "X-CellOps-Request" in forged.json()["detail"]
    assert not api.store.active_rollout().paused  # type: ignore[union-attr]
    done = operator.post(
        api.url + "/api/v1/rollout/pause", headers={"X-CellOps-Request": "dashboard"}, timeout=30
    )
    assert done.status_code == 202 and api.store.active_rollout().paused  # type: ignore[union-attr]
    viewer = signed_in(api, api.viewer).post(
        api.url + "/api/v1/rollout/resume", headers={"X-CellOps-Request": "dashboard"}, timeout=30
    )
    assert viewer.status_code == 403 and "needs the operator role" in viewer.json()["detail"]
    page = operator.get(api.url + "/rollout/panel", timeout=30).text
    assert "paused by an operator" in page and 'data-action="/api/v1/rollout/resume"' in page
    assert signed_in(api, api.operator).post(api.url + "/logout").url.endswith("/login")


def test_rejected_problems_are_listed_and_what_a_commit_says_is_escaped(api: Api) -> None:
    problem = {"file": "cells/x.yaml", "line": 3, "field": "spec", "message": "<script>x</script>"}
    api.store.record_revision(
        RevisionRecord("d" * 40, False, "<img src=x onerror=y>", [problem], 1.0)
    )
    page = signed_in(api, api.viewer).get(api.url + "/revisions", timeout=30).text
    assert "services/web.yaml:7: spec.replicas: expected an integer" in page
    assert "cells/x.yaml:3: spec: &lt;script&gt;" in page
    assert "<script>x" not in page and "<img src=x" not in page


def test_the_matrix_pages_a_large_fleet(tmp_path: Path) -> None:
    with serve(tmp_path, populate_with=(250, 3)) as api:
        browser = signed_in(api, api.viewer)
        first = browser.get(api.url + "/", timeout=60).text
        assert first.count('<tr data-cell="') == 100 and "cells 1–100 of 250" in first
        last = browser.get(api.url + "/?offset=200", timeout=60).text
        assert last.count('<tr data-cell="') == 50 and 'rel="next"' not in last
        assert browser.get(api.url + "/static/dashboard.js").status_code == 200
        assert browser.get(api.url + "/static/../app.py").status_code == 404


def test_a_page_that_is_not_there_says_so_on_a_page(api: Api) -> None:
    browser = signed_in(api, api.viewer)
    missing = browser.get(api.url + "/cells/nope", timeout=30)
    assert missing.status_code == 404 and "no cell &#39;nope&#39;" in missing.text
    assert 'id="whoami"' in missing.text  # the site's own page, with its menu
    wrong = browser.get(api.url + "/dora?window=1y", timeout=30)
    assert wrong.status_code == 422 and "is not one of 24h, 7d, 30d, 90d" in wrong.text
    assert browser.get(api.url + "/rollouts/99", timeout=30).status_code == 404
